"""Every ```python block of docs/library.md runs as written.

Each block is executed on its own, in a fresh module, in a worker thread (so a block's
``asyncio.run`` neither meets nor replaces the event loop pytest-asyncio runs tests on). A block
whose first line is ``# doc: needs-server`` needs a real server and is only compiled.

Blocks must not leak global state into other tests; the fixture below puts back what a block
can change by just defining classes or asking for the process-wide mediator: the default event
registry (every ``DomainEvent`` subclass registers itself there) and ``get_mediator()``'s
instance.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import tandem.mediator
from tandem.events import default_registry

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[3] / "docs" / "library.md"
NEEDS_SERVER = "# doc: needs-server"
BLOCK_TIMEOUT_SECONDS = 60

_FENCE = re.compile(r"^```python[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#{2,4} +(?P<title>.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Block:
    line: int  # of the block's first code line in docs/library.md
    heading: str
    code: str

    @property
    def needs_server(self) -> bool:
        return self.code.lstrip().startswith(NEEDS_SERVER)

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")[:40]
        return f"L{self.line}-{slug}"


def doc_blocks() -> list[Block]:
    text = DOC.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        headings = [h["title"] for h in _HEADING.finditer(text, 0, match.start())]
        line = text.count("\n", 0, match.start("code")) + 1
        blocks.append(Block(line, headings[-1] if headings else "top", match["code"]))
    return blocks


BLOCKS = doc_blocks()
RUNNABLE = [block for block in BLOCKS if not block.needs_server]


@pytest.fixture
def isolated_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    registry = default_registry
    saved = (
        dict(registry._types),
        dict(registry._forbid_extra),
        {name: dict(steps) for name, steps in registry._upcasters.items()},
    )
    monkeypatch.setattr(tandem.mediator, "_shared", {})
    try:
        yield
    finally:
        registry._types.clear()
        registry._types.update(saved[0])
        registry._forbid_extra.clear()
        registry._forbid_extra.update(saved[1])
        registry._upcasters.clear()
        registry._upcasters.update(saved[2])


def _compile(block: Block) -> types.CodeType:
    # Leading newlines keep the line numbers of tracebacks equal to the doc's.
    source = "\n" * (block.line - 1) + block.code
    return compile(source, str(DOC), "exec")


def _run(block: Block) -> None:
    name = f"library_doc_{block.line}"
    module = types.ModuleType(name)
    module.__file__ = str(DOC)
    sys.modules[name] = module  # pydantic and dataclasses look classes' modules up here
    try:
        exec(_compile(block), module.__dict__)
    finally:
        del sys.modules[name]


def _execute(block: Block) -> None:
    """Run (or, for ``needs-server`` blocks, compile) ``block``; re-raises what it raised."""
    if block.needs_server:
        _compile(block)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="doc-block") as pool:
        pool.submit(_run, block).result(timeout=BLOCK_TIMEOUT_SECONDS)


@pytest.mark.usefixtures("isolated_globals")
@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_doc_block(block: Block) -> None:
    _execute(block)


def test_the_doc_has_runnable_examples_of_every_component() -> None:
    """The examples that run name each component the page documents (a block that is only
    compiled does not count), so deleting or tagging one does not go unnoticed."""
    code = "\n".join(block.code for block in RUNNABLE)
    components = [
        "Command",
        "Query",
        "DomainEvent",
        "Success",
        "Failure",
        "Error",
        "get_mediator",
        "Mediator(",
        "ValidationBehaviour",
        "LoggingBehaviour",
        "MetricsBehaviour",
        "EventRegistry",
        "register_event",
        "upcaster",
        "CommandHandler",
        "QueryHandler",
        "TransactionalCommandHandler",
        "EventSourcingReadModelCommandHandler",
        "AggregateRoot",
        "AggregateRepository",
        "InMemorySnapshotStore",
        "InMemoryEventStore",
        "ReadModel",
        "SearchQuery",
        "PaginatedResult",
        "ReadModelService",
        "ReadModelQueryHandler",
        "ProjectionService",
        "ProjectionGapError",
        "ProjectionEventHandler",
        "BatchProjection",
        "InMemoryCache",
        "RedisCache",
        "MultiLevelCache",
        "EventDispatcher",
        "CQRSEndpointFactory",
        "CommandTestHarness",
        "QueryTestHarness",
        "EventStoreTestHarness",
        "ProjectionTest",
        "CQRSTestContainer",
        "MockUnitOfWork",
        "AggregateScenario",
    ]
    missing = [name for name in components if name not in code]
    assert missing == [], f"no runnable example in docs/library.md uses: {missing}"
    assert "MongoEventStore" in "\n".join(b.code for b in BLOCKS if b.needs_server)
    assert len(RUNNABLE) >= 15, [block.id for block in RUNNABLE]


def test_a_failing_block_fails_the_test() -> None:
    code = "import asyncio\n\nasync def main():\n    raise KeyError('x')\n\nasyncio.run(main())\n"
    with pytest.raises(KeyError):
        _execute(Block(1, "broken", code))
    with pytest.raises(SyntaxError):
        _execute(Block(1, "broken", f"{NEEDS_SERVER}\ndef broken(:\n"))
