"""One deployment serving the catalog and orders on the three real service processes, shared by
the tests of a module (a start costs 10-20 s), with the two projector groups compose and the
kustomize base run: ``products,category_stats`` and ``orders,customer_totals``.

Tests sharing it stay independent by using their own ids (``same_id``: one id given to a
product *and* an order on purpose) and by comparing metrics before and after, never totals.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from tandem.auth import issue_token
from tandem.settings import TandemSettings
from tandem.testing.infra import InfraEndpoints
from tandem.testing.system import RunningSystem, running_system

# importlib mode does not put this folder on sys.path by itself (for ``orders_system``).
sys.path.insert(0, str(Path(__file__).resolve().parent))

APPS = ["tandem_catalog.app:app", "tandem_orders.app:app"]
PROJECTOR_SETS = [["products", "category_stats"], ["orders", "customer_totals"]]
SCOPES = ["products:write", "products:read", "orders:write", "orders:read"]


@pytest.fixture(scope="module")
def token() -> str:
    return issue_token(TandemSettings(), "isolation-tester", SCOPES, 3600)


@pytest_asyncio.fixture(scope="module")
async def system(infra: InfraEndpoints) -> AsyncIterator[RunningSystem]:
    name = f"t-{uuid.uuid4().hex[:12]}"
    # Search pages live until the next notice of their read model; a long TTL makes "still
    # served from the page cache" a statement about notices, not about the clock.
    async with running_system(
        infra.as_env(),
        apps=APPS,
        name=name,
        projector_sets=PROJECTOR_SETS,
        extra_env={"TANDEM_SEARCH_CACHE_TTL_S": "600", "TANDEM_LRU_TTL_S": "600"},
    ) as running:
        yield running


@pytest_asyncio.fixture
async def http(token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


@pytest.fixture
def same_id() -> str:
    """An id a test gives to a product and to an order."""
    return f"x-{uuid.uuid4().hex[:8]}"
