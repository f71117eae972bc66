"""Snapshot store on MongoDB: one document per aggregate, replaced as newer ones come.

State must be BSON-encodable apart from ``Decimal``, which is stored as
``{"__decimal__": "<str>"}`` and decoded on read (a format snapshots already written keep). A
concurrent older save may overwrite a newer one; that is harmless because loading replays
every event after the snapshot's version.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from tandem.snapshots import Snapshot

Document = dict[str, Any]
_DECIMAL_TAG = "__decimal__"


def encode_state(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {_DECIMAL_TAG: str(value)}
    if isinstance(value, dict):
        return {key: encode_state(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode_state(item) for item in value]
    return value


def decode_state(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and _DECIMAL_TAG in value:
            return Decimal(value[_DECIMAL_TAG])
        return {key: decode_state(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_state(item) for item in value]
    return value


class MongoSnapshotStore:
    def __init__(self, database: AsyncDatabase[Any], collection: str = "snapshots") -> None:
        self._snapshots: AsyncCollection[Document] = database.get_collection(collection)

    async def get(self, aggregate_id: str) -> Snapshot | None:
        document = await self._snapshots.find_one({"_id": aggregate_id})
        if document is None:
            return None
        return Snapshot(
            aggregate_id=aggregate_id,
            aggregate_type=document["aggregate_type"],
            version=int(document["version"]),
            state=decode_state(document["state"]),
        )

    async def save(self, snapshot: Snapshot) -> None:
        await self._snapshots.replace_one(
            {"_id": snapshot.aggregate_id},
            {
                "aggregate_type": snapshot.aggregate_type,
                "version": snapshot.version,
                "state": encode_state(snapshot.state),
            },
            upsert=True,
        )


__all__ = ["MongoSnapshotStore", "decode_state", "encode_state"]
