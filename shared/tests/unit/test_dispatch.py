import pytest
from tandem import DomainEvent, EventDispatcher
from tandem.dispatch import ChangeFeed, event_type_of

pytestmark = pytest.mark.unit


class ThingHappened(DomainEvent):
    pass


class OtherHappened(DomainEvent):
    event_type = "other.happened"


def thing(n: int = 1) -> ThingHappened:
    return ThingHappened(aggregate_id=f"t{n}", aggregate_type="Thing")


async def test_subscribe_publish_unsubscribe():
    dispatcher = EventDispatcher()
    assert isinstance(dispatcher, ChangeFeed)
    seen: list[tuple[str, str]] = []

    async def typed(event):
        seen.append(("typed", event.aggregate_id))

    async def everything(event):
        seen.append(("all", event.aggregate_id))

    sub = await dispatcher.subscribe("ThingHappened", typed)
    await dispatcher.subscribe("*", everything)
    await dispatcher.publish(thing(1))
    await dispatcher.publish(OtherHappened(aggregate_id="o", aggregate_type="Other"))
    await dispatcher.unsubscribe(sub)
    await dispatcher.unsubscribe(sub)  # idempotent
    await dispatcher.publish(thing(2))
    assert seen == [("typed", "t1"), ("all", "t1"), ("all", "o"), ("all", "t2")]


async def test_event_type_and_class_name_both_match():
    dispatcher = EventDispatcher()
    seen = []

    async def handler(event):
        seen.append(event)

    await dispatcher.subscribe("other.happened", handler)
    await dispatcher.subscribe("OtherHappened", handler)
    await dispatcher.publish(OtherHappened(aggregate_id="o", aggregate_type="Other"))
    assert len(seen) == 2
    assert event_type_of({"event_type": "X"}) == "X"


async def test_failing_handler_does_not_starve_others_and_is_raised():
    dispatcher = EventDispatcher()
    seen = []

    async def broken(event):
        raise RuntimeError("boom")

    async def fine(event):
        seen.append(event)

    await dispatcher.subscribe("ThingHappened", broken)
    await dispatcher.subscribe("ThingHappened", fine)
    with pytest.raises(ExceptionGroup) as info:
        await dispatcher.publish(thing())
    assert len(seen) == 1
    assert isinstance(info.value.exceptions[0], RuntimeError)
