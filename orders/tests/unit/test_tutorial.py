"""docs/your-own-domain.md shows the orders package as it is: each block naming a file is that
file (or an excerpt of it), the size it states is the package's, and the commands it gives
are the ones the integration test runs."""

from __future__ import annotations

import ast
import re

import pytest
from tandem.testing.system import SERVICE_COMMANDS
from tutorial_blocks import ROOT, TUTORIAL, blocks, package_size

pytestmark = pytest.mark.unit


def test_every_block_naming_a_file_is_that_file() -> None:
    named = [b for b in blocks() if "/" in b.label]
    assert len(named) == 9
    for block in named:
        path, excerpt = block.label.removesuffix(" (excerpt)"), block.label.endswith("(excerpt)")
        text = (ROOT / path).read_text()
        if excerpt:
            assert block.body.rstrip("\n") in text, path
        else:
            assert block.body.rstrip("\n") == text.rstrip("\n"), f"{path} differs from the tutorial"


def test_every_block_is_checked() -> None:
    """A block is a file (above), the "try it" program or a command line (the integration
    test runs both); nothing else, so no block goes stale unseen."""
    for block in blocks():
        if block.lang == "bash":
            for line in block.body.splitlines():
                assert line.startswith(("uv run python -m ", "export TANDEM_APPS=")), line
        else:
            assert "/" in block.label or block.label == "try it", block
    (try_it,) = [b for b in blocks() if b.label == "try it"]
    ast.parse(try_it.body)


def test_the_commands_are_the_ones_the_services_run() -> None:
    run, rebuild = [b for b in blocks() if b.lang == "bash"]
    commands = [line.rstrip(" &") for line in run.body.splitlines() if line.startswith("uv")]
    assert commands == [f"uv run python -m {' '.join(c)}" for c in SERVICE_COMMANDS]
    for block in (run, rebuild):
        assert block.body.splitlines()[0] == "export TANDEM_APPS=tandem_orders.app:app"
    assert rebuild.body.splitlines()[1] == "uv run python -m projector rebuild orders"


def test_the_size_stated_is_the_package_size() -> None:
    sloc, lines = package_size()
    stated = re.search(r"package is (\d+) lines of code \((\d+) with", TUTORIAL.read_text())
    assert stated is not None
    assert (int(stated[1]), int(stated[2])) == (sloc, lines)
