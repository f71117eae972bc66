"""Typed exceptions raised inside the library and the domain.

They stay exceptions while inside (so a broken rule stops the work at once) and become
:class:`~tandem.result.Error` values at the boundaries through :func:`error_from_exception`,
which is the single place that decides codes and HTTP statuses.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from tandem.result import Error


class TandemError(Exception):
    """Base of every exception the library raises on purpose."""

    code = "tandem_error"
    status_code = 500

    def to_error(self) -> Error:
        return Error(code=self.code, message=str(self), status_code=self.status_code)


class DomainError(TandemError):
    """A broken business rule (e.g. a negative price); the caller asked for something invalid.

    ``status_code`` defaults to 422; pass 409 for rules about the current state
    ("already discontinued") so clients can tell "fix your input" from "re-read and retry".
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status_code: int = 422,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code
        self.details = details or {}

    def to_error(self) -> Error:
        return Error(
            code=self.code, message=self.message, status_code=self.status_code, details=self.details
        )


class ConcurrencyError(TandemError):
    """Optimistic-concurrency conflict: the stream moved since the writer read it.

    ``actual_version`` is what the store holds now (it may be lower than expected when the
    caller's expectation was simply wrong); the right reaction is to reload and retry.
    """

    code = "concurrency_conflict"
    status_code = 409

    def __init__(
        self, aggregate_id: str, expected_version: int | None, actual_version: int
    ) -> None:
        super().__init__(
            f"aggregate {aggregate_id!r} is at version {actual_version}, "
            f"expected {expected_version}"
        )
        self.aggregate_id = aggregate_id
        self.expected_version = expected_version
        self.actual_version = actual_version

    def to_error(self) -> Error:
        return Error(
            code=self.code,
            message=str(self),
            status_code=self.status_code,
            details={
                "aggregate_id": self.aggregate_id,
                "expected_version": self.expected_version,
                "actual_version": self.actual_version,
            },
        )


class AggregateNotFound(TandemError):
    code = "not_found"
    status_code = 404

    def __init__(self, aggregate_id: str, aggregate_type: str | None = None) -> None:
        kind = aggregate_type or "aggregate"
        super().__init__(f"{kind} {aggregate_id!r} not found")
        self.aggregate_id = aggregate_id
        self.aggregate_type = aggregate_type

    def to_error(self) -> Error:
        return Error(
            code=self.code,
            message=str(self),
            status_code=self.status_code,
            details={"aggregate_id": self.aggregate_id, "aggregate_type": self.aggregate_type},
        )


class UnknownEventType(TandemError):
    """A stored or received event names a type no registry knows: a poison message, not a bug
    to retry (the projector dead-letters it)."""

    code = "unknown_event_type"
    status_code = 500

    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


class EventSchemaError(TandemError):
    """A stored event's schema version cannot be brought to the current one (a missing
    upcaster, or an event written by newer code than this process runs)."""

    code = "event_schema_error"
    status_code = 500


class HandlerNotFound(TandemError):
    code = "handler_not_found"
    status_code = 501

    def __init__(self, message_type: str) -> None:
        super().__init__(f"no handler registered for {message_type}")
        self.message_type = message_type


def error_from_exception(exc: BaseException) -> Error:
    """Map any exception to an :class:`Error`; unknown ones become an opaque 500.

    The message of an unexpected exception is kept (it helps the operator) but its class name is
    the only detail, so internals such as connection strings are not put in ``details``.
    """
    if isinstance(exc, TandemError):
        return exc.to_error()
    if isinstance(exc, ValidationError):
        return Error(
            code="validation_error",
            message="invalid input",
            status_code=422,
            details={
                "errors": exc.errors(include_url=False, include_context=False, include_input=False)
            },
        )
    return Error(
        code="handler_error",
        message=str(exc) or type(exc).__name__,
        status_code=500,
        details={"exception": type(exc).__name__},
    )


__all__ = [
    "AggregateNotFound",
    "ConcurrencyError",
    "DomainError",
    "EventSchemaError",
    "HandlerNotFound",
    "TandemError",
    "UnknownEventType",
    "error_from_exception",
]
