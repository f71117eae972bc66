import pytest
from fastapi import FastAPI, WebSocketException, status
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from tandem import DomainEvent, EventDispatcher
from tandem.api import CQRSEndpointFactory

pytestmark = pytest.mark.unit


class WidgetCreated(DomainEvent):
    name: str = "x"


class WidgetDeleted(DomainEvent):
    pass


class Secret(DomainEvent):
    pass


def created(n: int) -> WidgetCreated:
    return WidgetCreated(aggregate_id=f"p{n}", aggregate_type="Product", version=n)


def make_app(dispatcher: EventDispatcher, **kwargs) -> FastAPI:
    def auth(token: str | None = None):
        if token != "ok":
            raise WebSocketException(code=status.WS_1008_POLICY_VIOLATION)

    app = FastAPI()
    CQRSEndpointFactory.create_websocket_endpoint(
        router=app,
        path="/ws/products",
        event_dispatcher=dispatcher,
        auth_dependency=auth,
        allowed_event_types=["WidgetCreated", "WidgetDeleted"],
        **kwargs,
    )
    return app


def publish(ws, dispatcher: EventDispatcher, *events) -> None:
    async def run():
        for event in events:
            await dispatcher.publish(event)

    ws.portal.call(run)


def test_streams_allowed_events_with_id_and_version():
    dispatcher = EventDispatcher()
    with (
        TestClient(make_app(dispatcher)) as client,
        client.websocket_connect("/ws/products?token=ok&event_types=WidgetCreated") as ws,
    ):
        assert ws.receive_json() == {"type": "subscribed", "event_types": ["WidgetCreated"]}
        publish(
            ws,
            dispatcher,
            Secret(aggregate_id="s", aggregate_type="S"),
            WidgetDeleted(aggregate_id="d", aggregate_type="Product"),
            created(1),
        )
        message = ws.receive_json()
        assert message["type"] == "event"
        assert message["event_type"] == "WidgetCreated"
        assert (message["data"]["aggregate_id"], message["data"]["version"]) == ("p1", 1)
        ws.send_text("ping")
        assert ws.receive_json() == {"type": "pong"}
    assert dispatcher.subscribers(created(1)) == []  # unsubscribed on disconnect


def test_default_is_all_allowed_types():
    dispatcher = EventDispatcher()
    with (
        TestClient(make_app(dispatcher)) as client,
        client.websocket_connect("/ws/products?token=ok") as ws,
    ):
        assert ws.receive_json()["event_types"] == ["WidgetCreated", "WidgetDeleted"]


def test_authentication_before_any_data():
    dispatcher = EventDispatcher()
    with TestClient(make_app(dispatcher)) as client:
        with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws/products"):
            pass
        assert info.value.code == status.WS_1008_POLICY_VIOLATION
        with (
            pytest.raises(WebSocketDisconnect) as nothing,
            client.websocket_connect("/ws/products?token=ok&event_types=Secret"),
        ):
            pass
        assert nothing.value.code == status.WS_1008_POLICY_VIOLATION
        with (
            pytest.raises(WebSocketDisconnect) as mixed,
            client.websocket_connect("/ws/products?token=ok&event_types=WidgetCreated,Secret"),
        ):
            pass
        assert mixed.value.code == status.WS_1008_POLICY_VIOLATION  # never silently narrowed


def drain(ws) -> None:
    while True:
        ws.receive_json()


def test_slow_client_is_dropped_with_1013():
    dispatcher = EventDispatcher()
    app = make_app(dispatcher, queue_size=2)
    with TestClient(app) as client, client.websocket_connect("/ws/products?token=ok") as ws:
        ws.receive_json()
        # Published in one go, without yielding: the client's queue overflows.
        publish(ws, dispatcher, *(created(n) for n in range(1, 6)))
        with pytest.raises(WebSocketDisconnect) as info:
            drain(ws)
        assert info.value.code == status.WS_1013_TRY_AGAIN_LATER


def test_heartbeat_when_idle():
    dispatcher = EventDispatcher()
    app = make_app(dispatcher, heartbeat_interval=0.05)
    with TestClient(app) as client, client.websocket_connect("/ws/products?token=ok") as ws:
        ws.receive_json()
        assert ws.receive_json()["type"] == "heartbeat"


def test_the_in_memory_dispatcher_speaks_the_live_protocol():
    """Notices published in process arrive as the distributed endpoint sends them: ``change``
    frames, an ``ids`` filter, snapshots and ``resync_done`` for what a client holds."""
    from tandem.runtime.contract import ChangeNotice

    dispatcher = EventDispatcher()
    documents = {"a": {"id": "a", "version": 3}}

    async def snapshots(ids: list[str]) -> dict:
        return {key: documents[key] for key in ids if key in documents}

    app = FastAPI()
    CQRSEndpointFactory.create_websocket_endpoint(
        app, "/ws/things", dispatcher, None, ["ThingChanged"], snapshots=snapshots
    )

    def change(thing: str, version: int) -> ChangeNotice:
        return ChangeNotice(
            read_model="things",
            id=thing,
            version=version,
            event_type="ThingChanged",
            changed_fields={},
        )

    with TestClient(app) as client, client.websocket_connect("/ws/things?ids=a") as ws:
        assert ws.receive_json() == {
            "type": "subscribed",
            "event_types": ["ThingChanged"],
            "ids": ["a"],
        }
        assert ws.receive_json() == {
            "type": "snapshot",
            "id": "a",
            "version": 3,
            "document": {"id": "a", "version": 3},
        }
        assert ws.receive_json() == {"type": "resync_done", "checked": 1, "sent": 1}
        publish(ws, dispatcher, change("b", 1), change("a", 4))
        frame = ws.receive_json()
        assert (frame["type"], frame["id"], frame["version"]) == ("change", "a", 4)
        ws.send_json({"type": "resync", "versions": {"a": 2}})
        assert ws.receive_json()["type"] == "snapshot"
        assert ws.receive_json()["type"] == "resync_done"
