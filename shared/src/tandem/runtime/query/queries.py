"""The queries the runtime answers for every read model, one query type per read model.

The mediator routes a query by its type, so each read model gets its own subclass of
:class:`GetDocument` / :class:`ListTotals` (``GetCounter`` for a ``Counter`` document,
``GetDailyTotals`` for ``daily_totals``): two read models never share a handler, and route
and OpenAPI names stay the domain's. A search uses the query model the app declared
(``ReadModelSpec.search.query``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model

from tandem.app import ReadModelSpec
from tandem.messages import Query

Document = dict[str, Any]
Q = TypeVar("Q", bound=Query[Any])


@dataclass(frozen=True, slots=True)
class VersionedDocument:
    """A document plus its version; the HTTP layer turns the version into ETag headers."""

    document: Document
    version: int


class GetDocument(Query[VersionedDocument]):
    """One document. With ``min_version``, wait up to ``wait_ms`` for the projector to reach it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    min_version: int | None = Field(default=None, ge=1)
    wait_ms: int | None = Field(default=None, ge=0)


class ListTotals(Query[dict[str, Any]]):
    """Every group of a totals read model."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def noun(spec: ReadModelSpec) -> str:
    """How messages name one document: ``orders document`` (the read model's name, which the
    reader knows from the route; a document class name such as ``OrderView`` is not)."""
    return f"{spec.name} document"


_MADE: dict[tuple[int, str], tuple[ReadModelSpec, type[Query[Any]]]] = {}


def _made(spec: ReadModelSpec, base: type[Q], name: str) -> type[Q]:
    """One class per (read model, kind): the mediator's registration and the route's
    validation must see the same type. Keyed by the spec object (held, so its id stays its)."""
    key = (id(spec), base.__name__)
    if key not in _MADE:
        made = type(name, (base,), {"__module__": __name__, "__doc__": base.__doc__})
        _MADE[key] = (spec, made)
    return _MADE[key][1]  # type: ignore[return-value]


def get_query_for(spec: ReadModelSpec) -> type[GetDocument]:
    name = f"Get{spec.document.__name__ if spec.document is not None else camel(spec.name)}"
    return _made(spec, GetDocument, name)


def totals_query_for(spec: ReadModelSpec) -> type[ListTotals]:
    return _made(spec, ListTotals, f"Get{camel(spec.name)}")


def totals_response_for(spec: ReadModelSpec) -> type[BaseModel]:
    """``{"items": [...]}`` of the read model's declared document (for the OpenAPI schema)."""
    item: Any = spec.document if spec.document is not None else Document
    model: type[BaseModel] = create_model(f"{camel(spec.name)}List", items=(list[item], ...))
    return model
