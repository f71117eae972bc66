"""The tutorial docs/your-own-domain.md, read as its tests read it: its fenced blocks, each with
its first line (a file path, ``try it``, or nothing)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "your-own-domain.md"
PACKAGE = ROOT / "orders" / "src" / "tandem_orders"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


@dataclass(frozen=True)
class Block:
    lang: str
    label: str  # the first line when it is a comment: a path, "try it", ...
    body: str  # the rest


def blocks() -> list[Block]:
    found = []
    for lang, text in _BLOCK.findall(TUTORIAL.read_text()):
        first, _, rest = text.partition("\n")
        if first.startswith("# "):
            found.append(Block(lang, first[2:].strip(), rest))
        else:
            found.append(Block(lang, "", text))
    return found


def lines_of_code(path: Path) -> int:
    """Lines a user writes: not blank, not a comment, not a docstring."""
    source = path.read_text()
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return sum(
        1
        for number, line in enumerate(source.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#") and number not in docstrings
    )


def package_size() -> tuple[int, int]:
    files = sorted(PACKAGE.glob("*.py"))
    return sum(lines_of_code(f) for f in files), sum(len(f.read_text().splitlines()) for f in files)
