"""The ``products`` read model as a library :class:`~tandem.projections.BatchProjection`.

The fold is :func:`tandem_catalog.products.fold` (pure); this class adds where the documents live:
one ``$in`` read, one ``insert`` of the new products and one conditional ``update`` command per
batch. The live batch, the
collection a rebuild is filling, and the rebuild's replay each use an instance bound to their
collection, through the same :class:`~tandem.projections.ProjectionService`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from tandem_catalog.contract import PRODUCTS_READ_MODEL
from tandem_catalog.products import Document, fold

from tandem.events import DomainEvent
from tandem.projections import AggregateChange, BatchProjection, ProjectionService
from tandem.runtime.projector.store import conditional_update, insert_new


class ProductsProjection(BatchProjection[Document]):
    def __init__(self, db: AsyncDatabase[Document], collection: str = PRODUCTS_READ_MODEL) -> None:
        self.db = db
        self.collection = collection

    @property
    def name(self) -> str:
        return PRODUCTS_READ_MODEL

    @classmethod
    def registered_in(cls, projections: ProjectionService) -> ProductsProjection:
        projection = projections.batch_projection(PRODUCTS_READ_MODEL)
        if not isinstance(projection, cls):
            raise TypeError(f"{PRODUCTS_READ_MODEL!r} is registered as {type(projection)!r}")
        return projection

    def bound_to(self, collection: str) -> ProductsProjection:
        return self if collection == self.collection else ProductsProjection(self.db, collection)

    async def load(self, aggregate_ids: list[str]) -> Mapping[str, Document]:
        cursor = self.db[self.collection].find({"_id": {"$in": aggregate_ids}})
        return {doc["_id"]: doc async for doc in cursor}

    def version_of(self, state: Document) -> int:
        return int(state["version"])

    def fold(self, state: Document | None, event: DomainEvent) -> tuple[Document, Any]:
        return fold(state, event)

    async def save(self, changes: list[AggregateChange[Document]]) -> None:
        """New products are inserted, stored ones updated on ``{_id, version: <stored>}``:
        another writer of the same product raises :class:`~projector.store.WriteConflict`
        either way (a duplicate ``_id``, or an upsert that collides with it)."""
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
