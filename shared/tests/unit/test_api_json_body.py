"""Command bodies are strict JSON: NaN, Infinity and overflowing numbers are a 422, not a 500."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from tandem import Command, Mediator
from tandem.api import CQRSEndpointFactory, parse_json_body

pytestmark = pytest.mark.unit


class SetPrice(Command[str]):
    price: Decimal


def build_app() -> FastAPI:
    mediator = Mediator()

    async def handle(command: SetPrice) -> str:
        return str(command.price)

    mediator.register_command_handler(SetPrice, handle)
    app = FastAPI()
    app.state.mediator = mediator
    CQRSEndpointFactory.create_command_endpoint(app, "/price", SetPrice)
    return app


@pytest.mark.parametrize(
    ("body", "spelling"),
    [
        (b'{"price": NaN}', "NaN"),
        (b'{"price": Infinity}', "Infinity"),
        (b'{"price": -Infinity}', "-Infinity"),
        (b'{"price": 1e400}', "1e400"),
        (b'{"nested": {"x": [-1E999]}, "price": 1}', "-1E999"),
    ],
)
async def test_non_finite_numbers_are_a_422_with_a_machine_readable_body(
    body: bytes, spelling: str
) -> None:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/price", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["type"] == "finite_number"
    assert error["loc"] == ["body"]
    assert error["input"] == spelling


async def test_finite_numbers_still_work() -> None:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/price", json={"price": 1e300})
        assert response.status_code == 200
        broken = await client.post(
            "/price", content=b"{", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 422
        assert broken.json()["detail"][0]["type"] == "json_invalid"


def test_parse_json_body() -> None:
    assert parse_json_body(b'{"a": 1.5, "b": [1, 2]}') == {"a": 1.5, "b": [1, 2]}
    with pytest.raises(RequestValidationError):
        parse_json_body(b"[NaN]")
