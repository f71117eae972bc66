"""Errors as values at the boundaries.

Handlers and the mediator return a :class:`Result` instead of raising, so that an HTTP route, a
consumer or a test can turn any outcome into a response without a ``try`` around every call.
Inside the domain, code raises the typed exceptions of :mod:`tandem.errors`; the conversion
happens once, in :func:`tandem.errors.error_from_exception`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, NoReturn, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")
U = TypeVar("U")


class Error(BaseModel):
    """A machine-readable failure.

    ``code`` is the stable part clients branch on; ``message`` is for humans and may change.
    ``status_code`` is only a hint for HTTP boundaries and is left out of :meth:`to_dict`, because
    the status line already carries it.
    """

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    status_code: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": dict(self.details)}


class ResultAccessError(RuntimeError):
    """Raised when reading ``value`` of a failure or ``error`` of a success: a caller bug."""


class Result(ABC, Generic[T]):
    """Outcome of a command or query: exactly one of :class:`Success` or :class:`Failure`."""

    __slots__ = ()

    @abstractmethod
    def is_success(self) -> bool: ...

    def is_failure(self) -> bool:
        return not self.is_success()

    @property
    @abstractmethod
    def value(self) -> T: ...

    @property
    @abstractmethod
    def error(self) -> Error: ...

    def map(self, fn: Callable[[T], U]) -> Result[U]:
        """Transform a success's value; a failure passes through unchanged."""
        if isinstance(self, Success):
            return Success(fn(self.value))
        return Failure(self.error)

    def unwrap_or(self, default: T) -> T:
        return self.value if self.is_success() else default


class Success(Result[T]):
    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def is_success(self) -> bool:
        return True

    @property
    def value(self) -> T:
        return self._value

    @property
    def error(self) -> NoReturn:
        raise ResultAccessError("a Success has no error")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Success) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Success", repr(self._value)))

    def __repr__(self) -> str:
        return f"Success({self._value!r})"


class Failure(Result[T]):
    """A failed outcome; generic in ``T`` only so it type-checks where a ``Result[T]`` is due."""

    __slots__ = ("_error",)

    def __init__(self, error: Error) -> None:
        self._error = error

    def is_success(self) -> bool:
        return False

    @property
    def value(self) -> NoReturn:
        raise ResultAccessError(
            f"a Failure has no value ({self._error.code}: {self._error.message})"
        )

    @property
    def error(self) -> Error:
        return self._error

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Failure) and other._error == self._error

    def __hash__(self) -> int:
        return hash(("Failure", self._error.code, self._error.message))

    def __repr__(self) -> str:
        return f"Failure({self._error!r})"


__all__ = ["Error", "Failure", "Result", "ResultAccessError", "Success"]
