"""Commands and queries: immutable requests, generic in the type of their result.

The type parameter is only for readers and type checkers (``Command[str]`` returns an id);
nothing at runtime depends on it. ``correlation_id`` ties the events a command causes to the
request; ``command_id`` is the client's idempotency key when it sends one. Both default to
``None`` so two commands built from the same input compare equal.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    correlation_id: str | None = None


class Command(Message, Generic[T]):
    """A request to change state, named in the imperative (``CreateProduct``)."""

    command_id: str | None = None


class Query(Message, Generic[T]):
    """A request to read state; it must not change anything."""


__all__ = ["Command", "Message", "Query"]
