"""One filter language for every adapter: a tiny subset of MongoDB's, evaluated in Python too.

The in-memory adapter must answer exactly like MongoDB, or tests against it
prove nothing; so the semantics below copy Mongo's: a missing field equals nothing, fails every
range comparison, but satisfies ``ne`` and ``nin``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
_REGEX_SPECIALS = set("\\.^$|?*+()[]{}")
_MISSING = object()

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def normalise(condition: Any) -> dict[str, Any]:
    """``5`` -> ``{"eq": 5}``; ``{"$gte": 1}`` -> ``{"gte": 1}``; unknown operators rejected."""
    if not isinstance(condition, dict):
        return {"eq": condition}
    ops: dict[str, Any] = {}
    for name, value in condition.items():
        op = name.removeprefix("$")
        if op not in OPERATORS:
            raise ValueError(f"unsupported filter operator {name!r} (use one of {OPERATORS})")
        if op in ("in", "nin") and not isinstance(value, list | tuple | set):
            raise ValueError(f"{name!r} needs a list")
        ops[op] = list(value) if op in ("in", "nin") else value
    return ops


def escape_regex(term: str) -> str:
    """Escape the metacharacters of PCRE (MongoDB) and RE2 alike: Python's ``re.escape`` also
    escapes spaces, which RE2-based servers reject."""
    return "".join("\\" + char if char in _REGEX_SPECIALS else char for char in term)


def _lookup(data: dict[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _test(value: Any, op: str, expected: Any) -> bool:
    if op == "eq":
        return value is not _MISSING and value == expected
    if op == "ne":
        return value is _MISSING or value != expected
    if op == "in":
        return value is not _MISSING and value in expected
    if op == "nin":
        return value is _MISSING or value not in expected
    if value is _MISSING or value is None or expected is None:
        return False
    try:
        return _COMPARE[op](value, expected)
    except TypeError:  # Mongo never matches across BSON types; neither do we.
        return False


def matches(
    data: dict[str, Any], filters: dict[str, Any], search_term: str | None, fields: Sequence[str]
) -> bool:
    for path, condition in filters.items():
        value = _lookup(data, path)
        if not all(_test(value, op, exp) for op, exp in normalise(condition).items()):
            return False
    if search_term:
        needle = search_term.casefold()
        return any(
            isinstance(text := _lookup(data, field), str) and needle in text.casefold()
            for field in fields
        )
    return True


def to_mongo_sort(sort: Sequence[tuple[str, str]]) -> list[tuple[str, int]]:
    """A :class:`~tandem.read_model.models.SearchQuery` sort, plus ``_id`` as the tie-breaker so
    pages never overlap or skip."""
    spec = [(field, -1 if direction == "desc" else 1) for field, direction in sort]
    spec.append(("_id", 1))
    return spec


def sort_key(data: dict[str, Any], path: str) -> tuple[int, Any]:
    # Mongo sorts missing and null before any value in ascending order.
    value = _lookup(data, path)
    return (0, 0) if value is _MISSING or value is None else (1, value)


def to_mongo(
    filters: dict[str, Any], search_term: str | None, fields: Sequence[str]
) -> dict[str, Any]:
    """Translate to a MongoDB filter on flat read-model documents (``_id`` = id, fields at the
    top level: the shape the projector writes and every repository reads).

    The one filter builder: the repositories and the query runtime's search both call it, so
    a filter means the same thing in memory, in MongoDB and over HTTP. User text is a literal,
    never a pattern (see :func:`escape_regex`).
    """
    query: dict[str, Any] = {}
    for path, condition in filters.items():
        query[path] = {f"${op}": value for op, value in normalise(condition).items()}
    if search_term:
        pattern = {"$regex": escape_regex(search_term), "$options": "i"}
        # "$or": [] is a server error; no searchable field means nothing can match.
        or_clauses = [{field: pattern} for field in fields]
        query["$or"] = or_clauses or [{"_id": {"$in": []}}]
    return query
