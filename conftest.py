"""Root conftest: every test tier gets the real-server fixtures of ``tandem.testing.infra``,
the checks of ``tandem.testing.checks``, and every test must carry a tier marker.

Tests run with ``TANDEM_ENVIRONMENT=test``, where the development JWT secret is refused; each
session gets its own random secret (kept if one is set), which the settings of in-process
apps and the environment of spawned services both read.
"""

import os
import secrets

import pytest

os.environ.setdefault("TANDEM_JWT_SECRET", secrets.token_hex(32))
# The app every service serves in tests unless a test declares its own.
os.environ.setdefault("TANDEM_APPS", "tandem_catalog.app:app")

pytest_plugins = ["tandem.testing.infra", "tandem.testing.checks"]

TIERS = frozenset({"unit", "integration", "e2e", "browser", "deploy"})


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects the unmarked ones
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fail collection when a test carries no tier marker.

    ``make test`` selects tests only by tier (``-m "unit or deploy"`` and so on), so a test
    without one would be left out of every run and could never fail.
    """
    unmarked = [item.nodeid for item in items if not TIERS & {m.name for m in item.iter_markers()}]
    if unmarked:
        raise pytest.UsageError(
            f"{len(unmarked)} test(s) without a tier marker ({', '.join(sorted(TIERS))}): "
            + ", ".join(unmarked[:10])
        )
