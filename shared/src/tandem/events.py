"""Domain events and the registry that turns stored dicts back into them.

Events are immutable facts named in the past tense. Every concrete subclass is registered in
:data:`default_registry` under its ``event_type`` when the class is created, so events defined
the plain way (as in the seed document) can be read back from MongoDB without extra wiring; a
second class with the same ``event_type`` replaces the first in the default registry, which is
what re-imports in tests need. Use a private :class:`EventRegistry` when that is too loose.

Schema evolution: bump ``schema_version`` on the class and register an upcaster from the old
version; stored dicts are rewritten on read, one version step at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar, overload
from uuid import uuid4

import orjson
from pydantic import BaseModel, ConfigDict, Field

from tandem.errors import EventSchemaError, UnknownEventType

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
E = TypeVar("E", bound="DomainEvent")

# Keys the serialized form adds on top of the model's fields.
_ENVELOPE_KEYS = ("event_type", "schema_version")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return str(uuid4())


class DomainEvent(BaseModel):
    """Base of every event. ``version`` is the aggregate's version *after* this event."""

    model_config = ConfigDict(frozen=True)

    event_type: ClassVar[str] = "DomainEvent"
    schema_version: ClassVar[int] = 1

    aggregate_id: str
    aggregate_type: str
    version: int = Field(default=1, ge=1)
    event_id: str = Field(default_factory=_new_id)
    occurred_at: datetime = Field(default_factory=_utcnow)
    correlation_id: str | None = None
    causation_id: str | None = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "event_type" not in cls.__dict__:
            cls.event_type = cls.__name__
        if cls.__pydantic_generic_metadata__["origin"] is None:
            default_registry.register(cls, replace=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (Decimal -> str, datetime -> ISO 8601) with the type envelope."""
        data = self.model_dump(mode="json")
        data["event_type"] = self.event_type
        data["schema_version"] = self.schema_version
        return data

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


class EventRegistry:
    """Maps ``event_type`` names to classes and upgrades old schema versions on read.

    The lookups are plain dict reads decided at registration time, because the projector
    deserializes on its hot path.
    """

    def __init__(self) -> None:
        self._types: dict[str, type[DomainEvent]] = {}
        self._forbid_extra: dict[str, bool] = {}
        self._upcasters: dict[str, dict[int, Upcaster]] = {}

    def register(self, event_cls: type[E], *, replace: bool = False) -> type[E]:
        name = event_cls.event_type
        existing = self._types.get(name)
        if existing is not None and existing is not event_cls and not replace:
            raise ValueError(
                f"event type {name!r} is already registered to {existing.__module__}."
                f"{existing.__qualname__}"
            )
        self._types[name] = event_cls
        self._forbid_extra[name] = event_cls.model_config.get("extra") == "forbid"
        return event_cls

    def register_upcaster(self, event_type: str, from_version: int, fn: Upcaster) -> None:
        """Register ``fn`` to turn a dict at ``from_version`` into one at ``from_version + 1``."""
        steps = self._upcasters.setdefault(event_type, {})
        if from_version in steps:
            raise ValueError(f"upcaster {event_type} v{from_version} is already registered")
        steps[from_version] = fn

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        def decorate(fn: Upcaster) -> Upcaster:
            self.register_upcaster(event_type, from_version, fn)
            return fn

        return decorate

    def resolve(self, event_type: str) -> type[DomainEvent]:
        try:
            return self._types[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._types

    def deserialize(self, data: Mapping[str, Any]) -> DomainEvent:
        event_type = data.get("event_type")
        if not isinstance(event_type, str):
            raise UnknownEventType(repr(event_type))
        cls = self._types.get(event_type)
        if cls is None:
            raise UnknownEventType(event_type)
        stored_version = data.get("schema_version", 1)
        if stored_version != cls.schema_version:
            data = self._upcast(event_type, dict(data), stored_version, cls.schema_version)
        if self._forbid_extra[event_type]:
            data = {k: v for k, v in data.items() if k not in _ENVELOPE_KEYS}
        return cls.model_validate(data)

    def deserialize_json(self, raw: bytes | str) -> DomainEvent:
        return self.deserialize(orjson.loads(raw))

    def _upcast(
        self, event_type: str, data: dict[str, Any], version: int, target: int
    ) -> dict[str, Any]:
        if version > target:
            raise EventSchemaError(
                f"{event_type} v{version} is newer than this code's v{target}; deploy newer code"
            )
        steps = self._upcasters.get(event_type, {})
        while version < target:
            step = steps.get(version)
            if step is None:
                raise EventSchemaError(f"no upcaster for {event_type} from v{version}")
            data = step(data)
            version += 1
        data["schema_version"] = target
        return data


default_registry = EventRegistry()


@overload
def register_event(event_cls: type[E], /) -> type[E]: ...
@overload
def register_event(*, registry: EventRegistry) -> Callable[[type[E]], type[E]]: ...
def register_event(
    event_cls: type[E] | None = None, /, *, registry: EventRegistry | None = None
) -> type[E] | Callable[[type[E]], type[E]]:
    """Register an event class explicitly, in the default registry or in ``registry``."""
    target = registry or default_registry

    def decorate(cls: type[E]) -> type[E]:
        return target.register(cls, replace=target is default_registry)

    if event_cls is not None:
        return decorate(event_cls)
    return decorate


__all__ = ["DomainEvent", "EventRegistry", "Upcaster", "default_registry", "register_event"]
