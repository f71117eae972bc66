"""The live catalog page in headless Chromium, against the three real services.

Starts ``python -m projector``, ``python -m command_service`` and ``python -m query_service``
on free ports with their own topic, databases, channel and cache prefix, opens the page twice
(one tab acts, the other only watches), creates a product through the form and changes its
price, and expects the watching tab to show both changes live over the WebSocket.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from tandem.testing.infra import InfraEndpoints
from tandem.testing.system import free_port

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SERVICES = ("projector", "command_service", "query_service")


@asynccontextmanager
async def service(module: str, env: dict[str, str], ready_url: str) -> AsyncIterator[None]:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", module, env=env)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                assert process.returncode is None, f"{module} exited ({process.returncode})"
                try:
                    if (await http.get(ready_url)).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"{module} did not become ready at {ready_url}")
        yield
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


async def test_create_and_reprice_through_the_page_and_watch_it_live(
    infra: InfraEndpoints, unique_name: str, mongo_client: Any
) -> None:
    missing = [m for m in SERVICES if importlib.util.find_spec(f"{m}.__main__") is None]
    assert not missing, f"service entry points missing: {', '.join(missing)}"
    from playwright.async_api import async_playwright, expect

    ports = {name: free_port() for name in SERVICES}
    query_url = f"http://127.0.0.1:{ports['query_service']}"
    command_url = f"http://127.0.0.1:{ports['command_service']}"
    suffix = unique_name.replace("-", "_")
    common = {
        **os.environ,
        **infra.as_env(),
        "TANDEM_ENVIRONMENT": "development",
        "TANDEM_LOG_LEVEL": "WARNING",
        "TANDEM_MONGO_WRITE_DB": f"w_{suffix}",
        "TANDEM_MONGO_READ_DB": f"r_{suffix}",
        # Topics of its own (one prefix for every service) and a group of its own; channels
        # and cache keys come from the catalog's declaration, the same on every side.
        "TANDEM_APPS": "tandem_catalog.app:app",
        "TANDEM_TOPIC_PREFIX": f"{unique_name}.",
        "TANDEM_GROUP_ID": f"projector-{unique_name}",
    }
    page_origins = json.dumps([query_url, f"http://localhost:{ports['query_service']}"])
    try:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(
                service(
                    "projector",
                    {**common, "TANDEM_HTTP_PORT": str(ports["projector"])},
                    f"http://127.0.0.1:{ports['projector']}/healthz",
                )
            )
            await stack.enter_async_context(
                service(
                    "command_service",
                    {
                        **common,
                        "TANDEM_HTTP_PORT": str(ports["command_service"]),
                        "TANDEM_CORS_ORIGINS": page_origins,
                    },
                    f"{command_url}/readyz",
                )
            )
            await stack.enter_async_context(
                service(
                    "query_service",
                    {
                        **common,
                        "TANDEM_HTTP_PORT": str(ports["query_service"]),
                        "TANDEM_COMMAND_SERVICE_URL": command_url,
                    },
                    f"{query_url}/readyz",
                )
            )
            playwright = await stack.enter_async_context(async_playwright())
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            stack.push_async_callback(browser.close)
            actor = await browser.new_page()
            watcher = await (await browser.new_context()).new_page()
            for page in (actor, watcher):
                await page.goto(query_url)
                await expect(page.locator("#ws-status")).to_have_attribute(
                    "data-state", "live", timeout=10_000
                )

            name = f"Lamp {unique_name}"
            await actor.fill("#create-name", name)
            await actor.fill("#create-description", "made in the browser test")
            await actor.fill("#create-price", "19.99")
            await actor.fill("#create-category", "lighting")
            await actor.click("#create-submit")

            for page in (actor, watcher):
                row = page.locator("#products tr", has_text=name)
                await expect(row).to_have_count(1, timeout=20_000)
                await expect(row.locator("td.price")).to_have_text("19.99")

            await actor.select_option("#price-product", label=name)
            await actor.fill("#price-value", "24.50")
            await actor.click("#price-submit")
            row = watcher.locator("#products tr", has_text=name)
            await expect(row.locator("td.price")).to_have_text("24.50", timeout=20_000)
            await expect(row.locator("td.version")).to_have_text("2")
            await expect(row).to_have_class("flash")
    finally:
        for db in (f"w_{suffix}", f"r_{suffix}"):
            await mongo_client.drop_database(db)


async def test_page_lists_and_updates_live_from_change_notices(
    make_settings: Any, mongo_client: Any, redis_client: Any
) -> None:
    """The page alone (no command service): list, search, and a live update from a notice."""
    from playwright.async_api import async_playwright, expect
    from tandem.runtime.query.testing import running
    from tandem_catalog.testing import PRODUCTS, notice, product_doc

    settings = make_settings(environment="development")
    db = mongo_client[settings.mongo_read_db]
    await db.products.insert_many(
        [product_doc("p1", 1, name="Desk", price=100.0), product_doc("p2", 1, name="Chair")]
    )
    try:
        async with running(settings) as url, async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                await page.goto(url)
                await expect(page.locator("#ws-status")).to_have_attribute(
                    "data-state", "live", timeout=10_000
                )
                await expect(page.locator("#products tr")).to_have_count(2)
                await page.fill("#q", "des")
                await page.click("#search-form button")
                await expect(page.locator("#products tr")).to_have_count(1)

                await db.products.replace_one(
                    {"_id": "p1"}, product_doc("p1", 2, name="Desk", price=80.0)
                )
                await redis_client.publish(PRODUCTS.channel, notice("p1", 2, price=80.0))
                row = page.locator('#products tr[data-id="p1"]')
                await expect(row.locator("td.price")).to_have_text("80.00", timeout=10_000)
                await expect(row).to_have_class("flash")
                await expect(page.locator("#feed li")).to_have_count(1)
            finally:
                await browser.close()
    finally:
        await mongo_client.drop_database(settings.mongo_read_db)
