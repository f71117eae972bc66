"""docs/your-own-domain.md run as written: orders alone on the three real services, the "try
it" program as a process of its own, then the rebuild command."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest
from tandem.auth import issue_token
from tandem.settings import TandemSettings
from tandem.testing.infra import InfraEndpoints
from tandem.testing.system import running_system
from tutorial_blocks import blocks

pytestmark = pytest.mark.integration


async def test_the_tutorial_runs_as_written(
    infra: InfraEndpoints, unique_name: str, tmp_path: Path
) -> None:
    (try_it,) = [b for b in blocks() if b.label == "try it"]
    rebuild = [b for b in blocks() if b.lang == "bash"][-1].body.splitlines()[-1].split()
    token = issue_token(TandemSettings(), "reader", ["orders:write", "orders:read"], 600)
    async with running_system(
        infra.as_env(), apps=["tandem_orders.app:app"], name=unique_name
    ) as system:
        program = tmp_path / "try_it.py"
        program.write_text(try_it.body)
        addresses = {"COMMANDS": system.commands, "QUERIES": system.queries, "WS": system.ws}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(program),
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, **addresses, "TOKEN": token},
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        printed = out.decode().splitlines()
        assert proc.returncode == 0, printed
        assert printed == [
            "201 1",
            "submitted 25.00",
            "[('OrderPlaced', 1), ('OrderSubmitted', 2)]",
            "409 order_not_open",
        ]

        assert rebuild[:5] == ["uv", "run", "python", "-m", "projector"]
        code, output = await system.projector_cli(*rebuild[5:])
        assert code == 0, output
        assert "orders now read from orders_" in output
        auth = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(headers=auth) as http:
            page = (await http.get(f"{system.queries}/api/orders/search")).json()
            (order_id,) = [item["id"] for item in page["items"]]
            after = (await http.get(f"{system.queries}/api/orders/{order_id}")).json()
            totals = (await http.get(f"{system.queries}/api/customers/totals")).json()
        assert (after["status"], after["total"], after["version"]) == ("submitted", "25.00", 2)
        assert "_id" not in after  # the API shape, whatever the fold copies through
        assert totals == {
            "items": [{"customer_id": "c-7", "submitted_orders": 1, "total": "25.00"}]
        }
