"""The mediator: routes a command or query to its one handler through the behaviours.

Handlers are registered explicitly, by exact message type (a subclass without its own handler
falls back to its nearest registered base). A handler is a :class:`CommandHandler` /
:class:`QueryHandler` or any async callable taking the message; it may return a ``Result`` or a
plain value (wrapped in ``Success``). ``execute_*`` never raise: a missing handler, a typed
domain error or an unexpected exception all come back as a ``Failure``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel

from tandem.behaviours import Behaviour, Next, default_behaviours
from tandem.errors import HandlerNotFound, TandemError, error_from_exception
from tandem.messages import Command, Query
from tandem.result import Failure, Result, Success

T = TypeVar("T")
Handler = Any  # an object with ``async handle(message)`` or an async callable
logger = logging.getLogger(__name__)


class Mediator:
    def __init__(self, behaviours: Sequence[Behaviour] | None = None) -> None:
        self._commands: dict[type[BaseModel], Handler] = {}
        self._queries: dict[type[BaseModel], Handler] = {}
        self._behaviours: list[Behaviour] = (
            list(behaviours) if behaviours is not None else default_behaviours()
        )

    def register_command_handler(self, command_type: type[Command[Any]], handler: Handler) -> None:
        """Register (or replace) the handler of ``command_type``."""
        self._commands[command_type] = handler

    def register_query_handler(self, query_type: type[Query[Any]], handler: Handler) -> None:
        self._queries[query_type] = handler

    def add_behaviour(self, behaviour: Behaviour) -> None:
        """Append an innermost behaviour (closest to the handler)."""
        self._behaviours.append(behaviour)

    def has_handler(self, message_type: type[BaseModel]) -> bool:
        found = _find(self._commands, message_type) or _find(self._queries, message_type)
        return found is not None

    async def execute_command(self, command: Command[T]) -> Result[T]:
        return await self._dispatch(command, self._commands)

    async def execute_query(self, query: Query[T]) -> Result[T]:
        return await self._dispatch(query, self._queries)

    async def _dispatch(
        self, message: BaseModel, handlers: dict[type[BaseModel], Handler]
    ) -> Result[Any]:
        handler = _find(handlers, type(message))
        call: Next = partial(_invoke, handler, message)
        for behaviour in reversed(self._behaviours):
            call = partial(behaviour, message, call)
        try:
            return await call()
        except Exception as exc:  # a behaviour itself failed; still never raise to the caller
            logger.exception("mediator pipeline failed", exc_info=exc)
            return Failure(error_from_exception(exc))


def _find(handlers: dict[type[BaseModel], Handler], message_type: type[BaseModel]) -> Handler:
    handler = handlers.get(message_type)
    if handler is None:
        for base in message_type.__mro__[1:]:
            handler = handlers.get(base)
            if handler is not None:
                handlers[message_type] = handler  # cache the fallback
                break
    return handler


async def _invoke(handler: Handler, message: BaseModel) -> Result[Any]:
    if handler is None:
        return Failure(HandlerNotFound(type(message).__name__).to_error())
    call: Callable[[BaseModel], Awaitable[Any]] = getattr(handler, "handle", None) or handler
    try:
        outcome = await call(message)
    except Exception as exc:
        if not isinstance(exc, TandemError):
            logger.exception("handler for %s failed", type(message).__name__, exc_info=exc)
        return Failure(error_from_exception(exc))
    return outcome if isinstance(outcome, Result) else Success(outcome)


_shared: dict[str, Mediator] = {}


def get_mediator(new_instance: bool = False) -> Mediator:
    """The process-wide mediator, or a fresh one (tests) when ``new_instance`` is true.

    A fresh instance does not replace the shared one.
    """
    if new_instance:
        return Mediator()
    if "default" not in _shared:
        _shared["default"] = Mediator()
    return _shared["default"]


__all__ = ["Handler", "Mediator", "get_mediator"]
