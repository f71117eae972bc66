"""MongoDB checkpoint store (the projector's)."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError


class MongoProjectionRepository:
    """One document per (projection, aggregate): ``{_id: "<projection>|<aggregate>", ...}``."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("projection", ASCENDING)], name="projection")

    @staticmethod
    def _key(projection: str, aggregate_id: str) -> str:
        return f"{projection}|{aggregate_id}"

    async def get_version(self, projection: str, aggregate_id: str) -> int:
        document = await self.collection.find_one({"_id": self._key(projection, aggregate_id)})
        return int(document["version"]) if document is not None else 0

    async def set_version(self, projection: str, aggregate_id: str, version: int) -> None:
        key = self._key(projection, aggregate_id)
        update = {
            "$set": {"projection": projection, "aggregate_id": aggregate_id, "version": version}
        }
        # One atomic conditional update: of concurrent writers, the highest version stays.
        try:
            await self.collection.update_one(
                {"_id": key, "version": {"$lt": version}}, update, upsert=True
            )
        except DuplicateKeyError:
            # Two first writers raced on the insert (or a newer version is stored); the document
            # exists now, so retry as a plain conditional update (no match: a newer one is).
            await self.collection.update_one({"_id": key, "version": {"$lt": version}}, update)

    async def reset(self, projection: str | None = None) -> None:
        await self.collection.delete_many({} if projection is None else {"projection": projection})
