"""``python -m projector dlq list|replay`` on a real topic."""

from __future__ import annotations

import subprocess
import sys
import uuid
from decimal import Decimal
from typing import Any

import pytest
from projector_helpers import env_for, wait_until_match
from tandem.runtime.contract import cloudevent_headers, dlq_topic
from tandem.runtime.projector.dlq import list_dead_letters
from tandem.runtime.projector.messages import dead_letter_headers, decode
from tandem_catalog.app import app as catalog
from tandem_catalog.events import ProductCreated

pytestmark = pytest.mark.integration


class _Record:
    def __init__(self, topic: str, value: bytes, key: bytes, headers: Any) -> None:
        self.topic, self.partition, self.offset = topic, 1, 7
        self.key, self.value, self.headers = key, value, headers


def _cli(env: Any, action: str) -> list[str]:
    """``python -m projector dlq <action>`` as a process; its output lines (without the JSON
    log lines that share stdout)."""
    done = subprocess.run(
        [sys.executable, "-m", "projector", "dlq", action],
        env=env_for(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if not line.startswith("{")]


async def test_a_replayed_dead_letter_is_applied_once(env: Any, projector: Any) -> None:
    pid = str(uuid.uuid4())
    [event] = await env.publisher.commit(
        [
            ProductCreated(
                aggregate_id=pid, name="x", description="", price=Decimal("2.5"), category="food"
            )
        ],
        publish=False,
    )
    # As if it had been dead-lettered during an outage of a projection dependency.
    delivery = decode(
        _Record(env.topic, event.to_json(), pid.encode(), cloudevent_headers(event)),
        catalog.registry,
    )
    await env.publisher.producer.send_and_wait(
        dlq_topic(env.topic),
        event.to_json(),
        key=pid.encode(),
        headers=dead_letter_headers(delivery, "projection_failed", "boom", 4),
    )
    bootstrap = env.settings.kafka_bootstrap_servers
    [letter] = await list_dead_letters(bootstrap, dlq_topic(env.topic), catalog.registry)
    assert letter.reason == "projection_failed"
    assert letter.attempts == 4
    assert letter.original == f"{env.topic}[1]@7"
    assert letter.event == "ProductCreated v1"  # decoded with the app's registry
    listed = _cli(env, "list")
    expected = (
        f"key={pid} from={env.topic}[1]@7 event=ProductCreated v1 reason=projection_failed "
        "attempts=4 error=boom"
    )
    assert [line.split(" ", 1)[1] for line in listed[:-1]] == [expected]
    assert listed[-1] == f"{dlq_topic(env.topic)}: 1 dead letter(s)"
    replayed = _cli(env, "replay")
    assert [line.split(" ", 2)[2] for line in replayed[:-1]] == [expected]
    assert replayed[0].startswith("replayed ")
    assert replayed[-1] == f"{dlq_topic(env.topic)}: 1 dead letter(s)"
    # Replay moves the group's position on the DLQ: nothing is replayed twice.
    assert _cli(env, "replay") == [f"{dlq_topic(env.topic)}: 0 dead letter(s)"]
    assert _cli(env, "list")[-1] == f"{dlq_topic(env.topic)}: 1 dead letter(s)"
    async with projector(env.settings):
        await wait_until_match(env.read_db, env.write_db)
    assert (await env.read_db["products"].find_one({"_id": pid}))["version"] == 1
