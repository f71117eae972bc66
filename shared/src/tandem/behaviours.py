"""Pipeline behaviours: cross-cutting steps wrapped around every handler call.

A behaviour is an async callable ``(message, call_next) -> Result``. The mediator composes them
in registration order (the first is outermost) and guarantees ``call_next`` returns a
``Result`` (handler exceptions are already converted), so a behaviour never needs ``try``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import structlog
from prometheus_client import REGISTRY, Counter, Histogram
from pydantic import BaseModel, ValidationError

from tandem.errors import error_from_exception
from tandem.messages import Command
from tandem.result import Failure, Result

Next = Callable[[], Awaitable[Result[Any]]]


class Behaviour(Protocol):
    async def __call__(self, message: BaseModel, call_next: Next) -> Result[Any]: ...


def _kind(message: BaseModel) -> str:
    return "command" if isinstance(message, Command) else "query"


class ValidationBehaviour:
    """Re-validates the message and runs per-type checks before the handler.

    Messages are validated when built, but ``model_construct`` and ``model_copy(update=...)``
    skip that; re-validating here means a handler can trust its input. ``checks`` adds rules
    that span fields, as callables raising ``ValueError`` or ``DomainError``.
    """

    def __init__(
        self, checks: Mapping[type[BaseModel], Sequence[Callable[[Any], None]]] | None = None
    ) -> None:
        self._checks = dict(checks or {})

    async def __call__(self, message: BaseModel, call_next: Next) -> Result[Any]:
        try:
            type(message).model_validate(message.model_dump(by_alias=True, round_trip=True))
            for check in self._checks.get(type(message), ()):
                check(message)
        except ValidationError as exc:
            return Failure(error_from_exception(exc))
        except ValueError as exc:
            return Failure(
                error_from_exception(exc).model_copy(
                    update={"code": "validation_error", "status_code": 422}
                )
            )
        except Exception as exc:
            return Failure(error_from_exception(exc))
        return await call_next()


class LoggingBehaviour:
    """One structured line per message: type, outcome, error code and duration.

    Failures of status 500 and up log at error level (they are bugs or outages); others at info,
    since a rejected command is normal traffic.
    """

    def __init__(self, logger: Any = None) -> None:
        self._log = logger or structlog.get_logger("tandem.mediator")

    async def __call__(self, message: BaseModel, call_next: Next) -> Result[Any]:
        started = time.perf_counter()
        result = await call_next()
        fields: dict[str, Any] = {
            "kind": _kind(message),
            "message_type": type(message).__name__,
            "correlation_id": getattr(message, "correlation_id", None),
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "outcome": "success" if result.is_success() else "failure",
        }
        level, event = "info", "message handled"
        if result.is_failure():
            error = result.error
            fields.update(error_code=error.code, error_message=error.message)
            level = "error" if (error.status_code or 500) >= 500 else "info"
            event = "message failed"
        try:
            getattr(self._log, level)(event, **fields)
        except Exception:  # a broken log sink must not turn a handled command into a failure
            logging.getLogger(__name__).debug("log sink failed", exc_info=True)
        return result


def _counter(name: str, doc: str, labels: Sequence[str]) -> Counter:
    try:
        return Counter(name, doc, labels)
    except ValueError:  # module imported twice under another name: reuse the collector
        return REGISTRY._names_to_collectors[name]  # type: ignore[return-value]


def _histogram(name: str, doc: str, labels: Sequence[str]) -> Histogram:
    try:
        return Histogram(name, doc, labels)
    except ValueError:
        return REGISTRY._names_to_collectors[name]  # type: ignore[return-value]


# Module level on purpose: collectors are process-wide, so many mediators (tests build one per
# test) share them instead of failing with "Duplicated timeseries".
MESSAGES_TOTAL = _counter(
    "tandem_messages_total",
    "Commands and queries handled, by outcome and error code",
    ("kind", "message_type", "outcome", "error_code"),
)
MESSAGE_SECONDS = _histogram(
    "tandem_message_duration_seconds",
    "Time to handle a command or query, behaviours included",
    ("kind", "message_type"),
)


class MetricsBehaviour:
    async def __call__(self, message: BaseModel, call_next: Next) -> Result[Any]:
        kind, message_type = _kind(message), type(message).__name__
        started = time.perf_counter()
        result = await call_next()
        MESSAGE_SECONDS.labels(kind, message_type).observe(time.perf_counter() - started)
        if result.is_success():
            MESSAGES_TOTAL.labels(kind, message_type, "success", "").inc()
        else:
            MESSAGES_TOTAL.labels(kind, message_type, "failure", result.error.code).inc()
        return result


def default_behaviours() -> list[Behaviour]:
    """Metrics outermost (it times everything), then logging, then validation."""
    return [MetricsBehaviour(), LoggingBehaviour(), ValidationBehaviour()]


__all__ = [
    "MESSAGES_TOTAL",
    "MESSAGE_SECONDS",
    "Behaviour",
    "LoggingBehaviour",
    "MetricsBehaviour",
    "Next",
    "ValidationBehaviour",
    "default_behaviours",
]
