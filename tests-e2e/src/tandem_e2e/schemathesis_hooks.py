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
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis
from hypothesis.internal import lambda_sources

IDEMPOTENCY_HEADER = "idempotency-key"
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
