"""A declared fold read model as a library :class:`~tandem.projections.BatchProjection`.

The fold is the app's (pure); this class adds where the documents live: one ``$in`` read, one
``insert`` of the new documents and one conditional ``update`` command per batch. The live
batch, the collection a rebuild is filling, and the rebuild's replay each use an instance bound
to their collection, through the same :class:`~tandem.projections.ProjectionService`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from tandem.app import Document, FoldProjection, ReadModelSpec
from tandem.events import DomainEvent
from tandem.projections import AggregateChange, BatchProjection, ProjectionService
from tandem.runtime.projector.store import conditional_update, insert_new


class FoldReadModel(BatchProjection[Document]):
    """Documents by aggregate id, each at the version of its last event; only the event types
    the declaration lists reach :meth:`fold` (``event_types``, checked by the planner)."""

    def __init__(
        self, spec: ReadModelSpec, db: AsyncDatabase[Document], collection: str | None = None
    ) -> None:
        if not isinstance(spec.projection, FoldProjection):
            raise TypeError(f"{spec.name} is not a fold read model")
        self.spec = spec
        self._fold = spec.projection.fold
        self.event_types = frozenset(spec.projection.event_types)
        self.db = db
        self.collection = collection or spec.collection

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def registered_in(cls, projections: ProjectionService, name: str) -> FoldReadModel:
        projection = projections.batch_projection(name)
        if not isinstance(projection, cls):
            raise TypeError(f"{name!r} is registered as {type(projection)!r}")
        return projection

    def bound_to(self, collection: str) -> FoldReadModel:
        if collection == self.collection:
            return self
        return FoldReadModel(self.spec, self.db, collection)

    async def load(self, aggregate_ids: list[str]) -> Mapping[str, Document]:
        """The stored documents, without ``_id``: a fold sees (and returns) the read model's
        fields only, so the cache and the change notices carry the API shape whatever the
        fold copies through."""
        cursor = self.db[self.collection].find({"_id": {"$in": aggregate_ids}})
        return {str(doc.pop("_id")): doc async for doc in cursor}

    def version_of(self, state: Document) -> int:
        return int(state["version"])

    def fold(self, state: Document | None, event: DomainEvent) -> tuple[Document, Any]:
        doc, changed = self._fold(state, event)
        if doc.get("version") != event.version:  # the version is the checkpoint: always kept
            doc = {**doc, "version": event.version}
        return doc, changed

    async def save(self, changes: list[AggregateChange[Document]]) -> None:
        """New documents are inserted, stored ones updated on ``{_id, version: <stored>}``:
        another writer of the same document raises
        :class:`~tandem.runtime.projector.store.WriteConflict` either way (a duplicate
        ``_id``, or an upsert that collides with it)."""
        written = [(c, c.state) for c in changes if c.steps and c.state is not None]
        new = [{"_id": c.aggregate_id, **state} for c, state in written if c.stored is None]
        updates = [
            {
                "q": {"_id": c.aggregate_id, "version": c.stored_version},
                "u": {"$set": state},
                "upsert": True,
            }
            for c, state in written
            if c.stored is not None
        ]
        if new:
            await insert_new(self.db, self.collection, new)
        if updates:
            await conditional_update(self.db, self.collection, updates)
