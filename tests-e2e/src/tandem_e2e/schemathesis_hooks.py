"""schemathesis hooks for the API fuzz test (loaded through ``SCHEMATHESIS_HOOKS``).

1. **A fresh Idempotency-Key per request.** The fuzzer draws header values from the schema, so
   it sends the same short key (``"0"``) with different bodies, which the command-service
   rightly refuses (422 ``idempotency_key_reused``) and schemathesis then reports as a valid
   request rejected. The fuzzer cannot know that a key binds a request, so each generated key
   keeps its drawn shape and gets a unique suffix; replay and reuse are covered by the
   idempotency integration tests and the e2e write-conflict scenario.
2. **CPython 3.11.7's ``ast.parse`` at a deep stack.** Hypothesis describes filter lambdas for
   its reprs by parsing their source file; parsing schemathesis' largest module from deep in
   its coverage phase raises ``SystemError: AST constructor recursion depth mismatch``
   (CPython gh-106905, fixed in later 3.11 releases). Only the description fails, so it falls
   back to a placeholder instead of aborting the operation's tests.
3. **Short long-polls.** A read with ``min_version`` (query or ``X-Min-Version``) waits up to
   ``wait_ms`` (10 s at most, by contract) for a version that random input never reaches, so
   at 150 examples per operation the query-service run took longer than the suite's bound.
   Such reads get ``wait_ms`` ≤ 200: the answer (the documented 409 with the version the read
   side has) and its schema are the same, and the waiting itself is covered by the
   query-service integration tests.
4. **One line per product on a new order.** An order names each product once (a 422
   ``duplicate_line`` otherwise), a rule JSON Schema cannot state for an array of objects, so
   the fuzzer's repeated lines get distinct product ids; the rule itself is covered by the
   orders HTTP integration tests.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis
from hypothesis.internal import lambda_sources

IDEMPOTENCY_HEADER = "idempotency-key"
MIN_VERSION_HEADER = "x-min-version"
FUZZ_WAIT_MS = 200
MAX_KEY_LENGTH = 255

_describe: Any = lambda_sources._lambda_description


def _describe_or_placeholder(f: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return _describe(f, *args, **kwargs)
    except SystemError:
        return "<lambda>"


setattr(lambda_sources, "_lambda_description", _describe_or_placeholder)  # noqa: B010


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if name.lower() == IDEMPOTENCY_HEADER and isinstance(value, str):
            suffix = "-" + uuid.uuid4().hex
            headers[name] = value[: MAX_KEY_LENGTH - len(suffix)] + suffix
    _shorten_long_poll(case, headers)
    _one_line_per_product(case)


def _one_line_per_product(case: Any) -> None:
    body = case.body if isinstance(case.body, dict) else None
    lines = body.get("lines") if body is not None else None
    if getattr(case, "method", "").upper() != "POST" or not isinstance(lines, list):
        return
    seen: set[object] = set()
    for number, line in enumerate(lines):
        product = line.get("product_id") if isinstance(line, dict) else None
        if not isinstance(product, str):
            continue
        if product in seen:
            line["product_id"] = f"{product[:50]}-{number}"
        seen.add(line["product_id"])


def _shorten_long_poll(case: Any, headers: dict[str, Any]) -> None:
    """Only valid or absent waits are shortened: an invalid one is a 422 with no wait, and
    rewriting it would turn a negative test case into a positive one."""
    query = case.query if isinstance(case.query, dict) else {}
    if "min_version" not in query and not any(n.lower() == MIN_VERSION_HEADER for n in headers):
        return
    wait = query.get("wait_ms")
    too_long = isinstance(wait, int) and not isinstance(wait, bool) and wait > FUZZ_WAIT_MS
    if "wait_ms" not in query or too_long:
        query["wait_ms"] = FUZZ_WAIT_MS
        case.query = query
