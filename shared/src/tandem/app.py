"""An application declaration: a user's domain described once, in plain Python, for the runtime.

The three services are generic processes; each loads one or more :class:`App` values (setting
``TANDEM_APPS=package.module:app,...``, or the ``tandem.apps`` entry point group) and serves
what they declare. Every name both sides of the system must agree on (topic per aggregate
type, events collection, read-model collections, cache prefix and change channel per read
model) is derived here, once, so the command-service, the projector and the query-service can
never disagree about it. Nothing in this module does I/O: an app imports it, never a driver.

A minimal app::

    app = App(
        name="counters",
        aggregates=[
            AggregateSpec(
                Counter,
                events=[CounterIncremented],
                route="/api/counters",
                id_field="counter_id",
                commands=[CommandRoute(Increment, "POST", "/{id}/increment",
                                       decide=lambda counter, cmd: counter.increment(cmd.by))],
            )
        ],
        read_models=[ReadModelSpec("counters", FoldProjection(fold_counter, [CounterIncremented]),
                                   route="/api/counters", live=True)],
    )
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from tandem.aggregate import AggregateRoot
from tandem.events import DomainEvent, EventRegistry, Upcaster
from tandem.messages import Command, Query
from tandem.read_model.models import PaginatedResult, SearchQuery

Document = dict[str, Any]
"""A read-model document as the projector stores it: flat JSON-ready fields, ``_id`` = id."""

NAMESPACE = "tandem"
ENTRY_POINT_GROUP = "tandem.apps"
DEFAULT_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

Fold = Callable[[Document | None, DomainEvent], tuple[Document, dict[str, object]]]
"""``(document or None, event) -> (new document, fields the event changed)``; pure. Raise
:class:`FoldError` when the event cannot apply (it is retried, then dead-lettered)."""


class FoldError(Exception):
    """An event that cannot apply to the current document (an update before the creation).

    Deterministic for the same inputs, so the projector retries it (the event store may still
    heal a gap) and then dead-letters it; it is never ignored.
    """


class AppError(ValueError):
    """A declaration that cannot run (a clash of names, an unknown source read model, ...)."""


# --- write side ------------------------------------------------------------------------------


class CommandAccepted(BaseModel):
    """Every command route's answer: the aggregate and its version after the command.

    The result type of an app's commands (``class CreateThing(Command[CommandAccepted])``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    version: int


class AggregateCommand(Command[CommandAccepted]):
    """A convenient base for an app's commands: immutable, unknown fields refused (a typo is a
    422, not a silent no-op), and the optional ``expected_version`` that the body or an
    ``If-Match`` header sets (a mismatch is a 409 with the current version)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expected_version: int | None = Field(default=None, ge=0, le=2**53)


@dataclass(frozen=True)
class CommandRoute:
    """One command of an aggregate and the HTTP route that sends it.

    Exactly one of ``create`` (build a new aggregate from the command) or ``decide`` (let an
    existing one decide; it records events or raises :class:`~tandem.errors.DomainError`) is
    given. ``path`` is relative to the aggregate's ``route``; ``{id}`` is the aggregate id. The
    runtime stamps each recorded event with the command's correlation and causation ids.
    """

    command: type[Command[Any]]
    method: Literal["POST", "PUT", "PATCH", "DELETE"]
    path: str = ""
    create: Callable[[Any], AggregateRoot] | None = None
    decide: Callable[[Any, Any], object] | None = None
    summary: str = ""
    status_code: int | None = None

    def __post_init__(self) -> None:
        if (self.create is None) == (self.decide is None):
            raise AppError(f"{self.command.__name__}: give exactly one of create= or decide=")
        if self.decide is not None and "{id}" not in self.path:
            raise AppError(f"{self.command.__name__}: a decide route's path names {{id}}")

    @property
    def creates(self) -> bool:
        return self.create is not None

    @property
    def status(self) -> int:
        return self.status_code or (201 if self.creates else 200)


@dataclass(frozen=True)
class AggregateSpec:
    """An event-sourced aggregate type: its events, its commands and where they are sent."""

    aggregate: type[AggregateRoot]
    events: Sequence[type[DomainEvent]]
    commands: Sequence[CommandRoute]
    route: str
    id_field: str
    write_scope: str | None = None
    id_pattern: str = DEFAULT_ID_PATTERN
    tag: str | None = None

    @property
    def aggregate_type(self) -> str:
        return self.aggregate.aggregate_type

    @property
    def topic(self) -> str:
        """The Kafka topic of this aggregate type's events (one per type, keyed by id)."""
        return f"{NAMESPACE}.{_snake(self.aggregate_type)}.events"

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic}.dlq"

    @property
    def scope(self) -> str:
        return self.write_scope or f"{self.route.rstrip('/').rsplit('/', 1)[-1]}:write"

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(e.event_type for e in self.events)


# --- read side -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoldProjection:
    """A read model that is the fold of each aggregate's events: one document per aggregate,
    at the version of the last event applied (ordering, duplicates and gaps are the
    runtime's)."""

    fold: Fold
    events: Sequence[type[DomainEvent]]

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(e.event_type for e in self.events)


Contribution = Callable[[Document | None], tuple[str, Mapping[str, int]] | None]
"""What one source document adds to the totals: ``(group, {counter: integer})`` or ``None``."""


@dataclass(frozen=True)
class TotalsProjection:
    """A derived read model: integer totals per group over another read model's documents
    (category stats: per category, active products and their price sum in cents).

    Exactly once in effect without transactions: the runtime logs each message's share under a
    deterministic id and folds the log into the totals with compare-and-set, so a replayed or
    duplicated event never counts twice. ``present`` turns a stored totals document into what
    readers get (an average, money as decimals)."""

    source: str
    contribution: Contribution
    present: Callable[[str, Mapping[str, int]], Document]


@dataclass(frozen=True)
class Index:
    keys: Sequence[tuple[str, Literal[1, -1]]]
    unique: bool = False

    @property
    def name(self) -> str:
        return "_".join(f"{k}_{d}" for k, d in self.keys)


class SearchParams(Query[PaginatedResult[Document]]):
    """A read model's search as its query string gives it, with ``page`` and ``page_size``.

    A subclass declares its parameters as optional fields: each one given is an equality
    filter on the field of that name, unless :attr:`operators` maps it to another field and
    an operator (``{"min_price": ("price", "gte")}``); ``q`` is the free text (searched in
    the read model's ``text_fields``) and ``sort`` the sort (declare it as a ``Literal`` of
    the sorts you index). An unknown parameter is a 422, like any query model's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    operators: ClassVar[Mapping[str, tuple[str, str]]] = {}
    page: int = Field(default=1, ge=1, le=10_000)
    page_size: int = Field(default=20, ge=1, le=100)

    def to_search(self) -> SearchQuery:
        filters: dict[str, Any] = {}
        common = {*SearchParams.model_fields, "sort", "q"}  # paging and the query's own
        for name, value in self.model_dump(exclude=common).items():
            if value is None or value == "":
                continue  # not given (an empty query-string value is not a filter either)
            if name in self.operators:
                target, op = self.operators[name]
                filters.setdefault(target, {})[op] = value
            else:
                filters[name] = value
        return SearchQuery(
            search_term=getattr(self, "q", None) or None,
            filters=filters,
            sort=getattr(self, "sort", None),
            page=self.page,
            page_size=self.page_size,
        )


@dataclass(frozen=True)
class Search:
    """The read model's search query and how it becomes the library's :class:`SearchQuery`
    (one filter builder for in-memory and MongoDB repositories): the query's own
    ``to_search`` (as :class:`SearchParams` has) unless another function is given."""

    query: type[Query[Any]]
    to_search: Callable[[Any], SearchQuery] | None = None
    text_fields: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.to_search is None:
            own = getattr(self.query, "to_search", None)
            if not callable(own):
                raise AppError(f"{self.query.__name__}: no to_search (use SearchParams)")
            object.__setattr__(self, "to_search", own)

    def build(self, query: Any) -> SearchQuery:
        """The :class:`SearchQuery` of one validated request."""
        assert self.to_search is not None  # set by __post_init__
        return self.to_search(query)


@dataclass(frozen=True)
class ReadModelSpec:
    """A read model: its projection, where it is read, and whether readers get live pushes."""

    name: str
    projection: FoldProjection | TotalsProjection
    route: str
    document: type[BaseModel] | None = None
    read_scope: str | None = None
    live: bool = False
    """Serve a WebSocket at ``/ws/<name>`` pushing its changes (every fold read model is cached
    and announced on its channel either way, for ``min_version`` reads)."""
    indexes: Sequence[Index] = ()
    search: Search | None = None
    tag: str | None = None

    @property
    def collection(self) -> str:
        """The logical collection (a rebuild's pointer may redirect readers to another)."""
        return self.name

    @property
    def cache_prefix(self) -> str:
        return f"{NAMESPACE}:{self.name}:"

    def cache_key(self, document_id: str) -> str:
        return f"{self.cache_prefix}{document_id}"

    @property
    def channel(self) -> str:
        """The Redis pub/sub channel its change notices go to."""
        return f"{NAMESPACE}.changes.{self.name}"

    @property
    def scope(self) -> str:
        return self.read_scope or f"{self.route.rstrip('/').rsplit('/', 1)[-1]}:read"

    @property
    def is_fold(self) -> bool:
        return isinstance(self.projection, FoldProjection)


# --- the app ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    """One application: aggregates, read models, upcasters and (optionally) static assets."""

    name: str
    aggregates: Sequence[AggregateSpec]
    read_models: Sequence[ReadModelSpec] = ()
    upcasters: Sequence[tuple[str, int, Upcaster]] = ()
    static_dir: Path | None = None
    title: str = ""
    registry: EventRegistry = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise AppError(f"app name {self.name!r}: lower case letters, digits and _")
        registry = EventRegistry()
        for aggregate in self.aggregates:
            for event in aggregate.events:
                registry.register(event)
        for event_type, from_version, fn in self.upcasters:
            registry.register_upcaster(event_type, from_version, fn)
        object.__setattr__(self, "registry", registry)
        names = {rm.name for rm in self.read_models}
        if len(names) != len(self.read_models):
            raise AppError(f"app {self.name!r}: two read models share a name")
        for rm in self.read_models:
            if isinstance(rm.projection, TotalsProjection) and rm.projection.source not in names:
                raise AppError(f"{rm.name}: source read model {rm.projection.source!r} unknown")
            if isinstance(rm.projection, FoldProjection):
                unknown = set(rm.projection.event_types) - set(self.event_types)
                if unknown:
                    raise AppError(f"{rm.name}: events not declared by an aggregate: {unknown}")

    @property
    def events_collection(self) -> str:
        """The event store's collection (commits and outbox) of this app's aggregates."""
        return f"{self.name}_events"

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(t for a in self.aggregates for t in a.event_types)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(a.topic for a in self.aggregates)

    def aggregate_for(self, aggregate_type: str) -> AggregateSpec:
        for aggregate in self.aggregates:
            if aggregate.aggregate_type == aggregate_type:
                return aggregate
        raise KeyError(aggregate_type)

    def read_model(self, name: str) -> ReadModelSpec:
        for rm in self.read_models:
            if rm.name == name:
                return rm
        raise KeyError(f"app {self.name!r} declares no read model {name!r}")

    def source_of(self, totals: ReadModelSpec) -> ReadModelSpec:
        assert isinstance(totals.projection, TotalsProjection)
        return self.read_model(totals.projection.source)

    def derived_from(self, source: ReadModelSpec) -> list[ReadModelSpec]:
        return [
            rm
            for rm in self.read_models
            if isinstance(rm.projection, TotalsProjection) and rm.projection.source == source.name
        ]


def check_together(apps: Iterable[App]) -> list[App]:
    """Apps served by one deployment must not share a name, topic, collection or route."""
    apps = list(apps)
    seen: dict[str, str] = {}

    def claim(kind: str, value: str, owner: str) -> None:
        key = f"{kind}:{value}"
        if key in seen:
            raise AppError(f"{kind} {value!r} is declared by both {seen[key]} and {owner}")
        seen[key] = owner

    for app in apps:
        claim("app", app.name, app.name)
        claim("collection", app.events_collection, app.name)
        for aggregate in app.aggregates:
            claim("topic", aggregate.topic, app.name)
            claim("route", aggregate.route, app.name)
        for rm in app.read_models:
            claim("collection", rm.collection, app.name)
            claim("read route", rm.route, app.name)
    return apps


def load_app(spec: str) -> App:
    """``package.module:attribute`` (or an entry point name of the ``tandem.apps`` group)."""
    if ":" not in spec:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == spec:
                spec = ep.value
                break
        else:
            raise AppError(f"no app {spec!r}: use package.module:attribute or an entry point")
    module_name, _, attribute = spec.partition(":")
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise AppError(f"cannot load app {spec!r}: {exc}") from exc
    if not isinstance(value, App):
        raise AppError(f"{spec!r} is a {type(value).__name__}, not a tandem.app.App")
    return value


def load_apps(specs: Iterable[str]) -> list[App]:
    apps = check_together(load_app(s) for s in specs)
    if not apps:
        raise AppError("no app to serve: set TANDEM_APPS=package.module:app")
    return apps


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


__all__ = [
    "AggregateSpec",
    "App",
    "AppError",
    "CommandAccepted",
    "CommandRoute",
    "Contribution",
    "Document",
    "Fold",
    "FoldError",
    "FoldProjection",
    "Index",
    "ReadModelSpec",
    "Search",
    "TotalsProjection",
    "check_together",
    "load_app",
    "load_apps",
]
