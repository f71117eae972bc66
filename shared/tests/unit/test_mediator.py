from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel, Field
from tandem.behaviours import LoggingBehaviour, MetricsBehaviour, Next, ValidationBehaviour
from tandem.errors import AggregateNotFound, ConcurrencyError, DomainError
from tandem.handlers import CommandHandler, QueryHandler
from tandem.mediator import Mediator, get_mediator
from tandem.messages import Command, Query
from tandem.result import Failure, Result, Success

pytestmark = pytest.mark.unit


class SetPrice(Command[int]):
    product_id: str
    price: Decimal = Field(gt=0)


class GetPrice(Query[Decimal]):
    product_id: str


class SetPriceHandler(CommandHandler[SetPrice, int]):
    def __init__(self, exc: Exception | None = None) -> None:
        self.exc = exc
        self.seen: list[SetPrice] = []

    async def handle(self, command: SetPrice) -> Result[int]:
        self.seen.append(command)
        if self.exc:
            raise self.exc
        return Success(2)


class GetPriceHandler(QueryHandler[GetPrice, Decimal]):
    async def handle(self, query: GetPrice) -> Result[Decimal]:
        return Success(Decimal("1.5"))


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_routes_commands_and_queries_to_their_handlers() -> None:
    mediator = Mediator()
    mediator.register_command_handler(SetPrice, SetPriceHandler())
    mediator.register_query_handler(GetPrice, GetPriceHandler())
    assert await mediator.execute_command(SetPrice(product_id="p", price=Decimal(3))) == Success(2)
    assert (await mediator.execute_query(GetPrice(product_id="p"))).value == Decimal("1.5")
    assert mediator.has_handler(SetPrice)


async def test_plain_async_functions_returning_values_are_handlers() -> None:
    mediator = Mediator()

    async def get_price(query: GetPrice) -> Decimal:
        return Decimal(7)

    mediator.register_query_handler(GetPrice, get_price)
    assert await mediator.execute_query(GetPrice(product_id="p")) == Success(Decimal(7))


async def test_unregistered_message_is_a_failure_not_a_crash() -> None:
    result = await Mediator().execute_command(SetPrice(product_id="p", price=Decimal(1)))
    assert result.is_failure()
    assert result.error.code == "handler_not_found"
    assert result.error.status_code == 501


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (RuntimeError("boom"), "handler_error", 500),
        (DomainError("invalid_price", "no"), "invalid_price", 422),
        (DomainError("discontinued", "no", status_code=409), "discontinued", 409),
        (ConcurrencyError("p", 1, 2), "concurrency_conflict", 409),
        (AggregateNotFound("p"), "not_found", 404),
    ],
)
async def test_handler_exceptions_become_failures(exc: Exception, code: str, status: int) -> None:
    mediator = Mediator()
    mediator.register_command_handler(SetPrice, SetPriceHandler(exc))
    result = await mediator.execute_command(SetPrice(product_id="p", price=Decimal(1)))
    assert isinstance(result, Failure)
    assert (result.error.code, result.error.status_code) == (code, status)
    if code == "concurrency_conflict":
        assert result.error.details["expected_version"] == 1
        assert result.error.details["actual_version"] == 2


async def test_validation_behaviour_catches_messages_that_skipped_validation() -> None:
    mediator = Mediator()
    handler = SetPriceHandler()
    mediator.register_command_handler(SetPrice, handler)
    bad = SetPrice.model_construct(product_id="p", price=Decimal(-1))
    result = await mediator.execute_command(bad)
    assert result.error.code == "validation_error"
    assert result.error.status_code == 422
    assert handler.seen == []


async def test_validation_behaviour_runs_cross_field_checks() -> None:
    def not_free_lamps(command: SetPrice) -> None:
        if command.product_id == "lamp" and command.price < 5:
            raise ValueError("lamps cost at least 5")

    mediator = Mediator(behaviours=[ValidationBehaviour({SetPrice: [not_free_lamps]})])
    mediator.register_command_handler(SetPrice, SetPriceHandler())
    result = await mediator.execute_command(SetPrice(product_id="lamp", price=Decimal(1)))
    assert (result.error.code, result.error.message) == (
        "validation_error",
        "lamps cost at least 5",
    )


async def test_metrics_and_logging_record_each_outcome() -> None:
    events: list[tuple[str, str, dict[str, Any]]] = []

    class Recorder:
        def info(self, event: str, **fields: Any) -> None:
            events.append(("info", event, fields))

        def error(self, event: str, **fields: Any) -> None:
            events.append(("error", event, fields))

    mediator = Mediator(behaviours=[MetricsBehaviour(), LoggingBehaviour(Recorder())])
    mediator.register_command_handler(SetPrice, SetPriceHandler(RuntimeError("boom")))
    labels = {"kind": "command", "message_type": "SetPrice", "outcome": "failure"}
    before = _sample("tandem_messages_total", {**labels, "error_code": "handler_error"})
    await mediator.execute_command(SetPrice(product_id="p", price=Decimal(1), correlation_id="c1"))
    after = _sample("tandem_messages_total", {**labels, "error_code": "handler_error"})
    assert after == before + 1
    level, _, fields = events[-1]
    assert level == "error"
    assert fields["error_code"] == "handler_error"
    assert fields["correlation_id"] == "c1"
    assert fields["message_type"] == "SetPrice"


async def test_behaviours_wrap_in_order_and_a_broken_behaviour_is_contained() -> None:
    order: list[str] = []

    def tracing(name: str) -> Any:
        async def behaviour(message: BaseModel, call_next: Next) -> Result[Any]:
            order.append(f"{name}>")
            result = await call_next()
            order.append(f"<{name}")
            return result

        return behaviour

    mediator = Mediator(behaviours=[tracing("outer"), tracing("inner")])
    mediator.register_query_handler(GetPrice, GetPriceHandler())
    await mediator.execute_query(GetPrice(product_id="p"))
    assert order == ["outer>", "inner>", "<inner", "<outer"]

    async def broken(message: BaseModel, call_next: Next) -> Result[Any]:
        raise RuntimeError("behaviour bug")

    mediator.add_behaviour(broken)
    result = await mediator.execute_query(GetPrice(product_id="p"))
    assert result.error.code == "handler_error"


async def test_many_mediators_can_be_built_and_the_default_is_shared() -> None:
    for _ in range(5):
        Mediator()
    assert get_mediator() is get_mediator()
    assert get_mediator(new_instance=True) is not get_mediator()


async def test_subclass_falls_back_to_base_handler() -> None:
    class UrgentSetPrice(SetPrice):
        pass

    mediator = Mediator()
    mediator.register_command_handler(SetPrice, SetPriceHandler())
    assert (await mediator.execute_command(UrgentSetPrice(product_id="p", price=1))).value == 2


async def test_validation_behaviour_accepts_aliased_fields() -> None:
    class Tag(Command[int]):
        sku_code: str = Field(alias="skuCode")

    async def handle(command: Tag) -> int:
        return 1

    mediator = Mediator()
    mediator.register_command_handler(Tag, handle)
    assert (await mediator.execute_command(Tag(skuCode="x"))).value == 1
