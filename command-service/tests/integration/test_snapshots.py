"""Snapshots (``snapshot_every``): a product loaded from its snapshot and the commits after it
behaves exactly like one replayed from version 1, conflicts included."""

from __future__ import annotations

from typing import Any

import pytest
from tandem.aggregate import AggregateRepository
from tandem.event_store.mongo_snapshots import MongoSnapshotStore
from tandem_catalog import Product

pytestmark = pytest.mark.integration


async def test_commands_on_a_snapshotted_product(app_factory: Any) -> None:
    async with app_factory(snapshot_every=3) as running:
        created = await running.client.post(
            "/api/products",
            json={"name": "Lamp", "price": "10.00", "category": "lighting"},
            headers=running.headers(),
        )
        pid = created.json()["id"]
        for i in range(7):  # versions 2..8; snapshots when crossing 3 and 6
            answer = await running.client.post(
                f"/api/products/{pid}/price",
                json={"price": f"{11 + i}.50"},
                headers=running.headers(),
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["version"] == i + 2
        snapshots = running.service.mongo[running.settings.mongo_write_db]["catalog_snapshots"]
        snapshot = await snapshots.find_one({"_id": pid})
        assert snapshot is not None
        assert snapshot["version"] == 6

        stale = await running.client.patch(
            f"/api/products/{pid}",
            json={"name": "Lamp II"},
            headers=running.headers(**{"If-Match": '"6"'}),
        )
        assert stale.status_code == 409
        assert stale.json()["error"]["details"]["current_version"] == 8

        renamed = await running.client.patch(
            f"/api/products/{pid}",
            json={"name": "Lamp II"},
            headers=running.headers(**{"If-Match": '"8"'}),
        )
        assert renamed.status_code == 200
        assert renamed.json()["version"] == 9
        gone = await running.client.post(
            f"/api/products/{pid}/discontinue", headers=running.headers()
        )
        assert gone.status_code == 200
        again = await running.client.post(
            f"/api/products/{pid}/price", json={"price": "1.00"}, headers=running.headers()
        )
        assert again.status_code == 409  # discontinued, with the state from the snapshot
        assert again.json()["error"]["code"] == "product_discontinued"

        # The snapshot path and a full replay agree on the state.
        store = running.store
        snapshotting = AggregateRepository(
            Product, store, snapshot_store=MongoSnapshotStore(snapshots.database), snapshot_every=3
        )
        from_snapshot = await snapshotting.load(pid)
        replayed = await AggregateRepository(Product, store).load(pid)
        assert from_snapshot.version == replayed.version == 10
        assert from_snapshot.snapshot_state() == replayed.snapshot_state()
