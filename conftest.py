"""Root conftest: every test tier gets the real-server fixtures of ``tandem.testing.infra``.

Tests run with ``TANDEM_ENVIRONMENT=test``, where the development JWT secret is refused; each
session gets its own random secret (kept if one is set), which the settings of in-process
apps and the environment of spawned services both read.
"""

import os
import secrets

os.environ.setdefault("TANDEM_JWT_SECRET", secrets.token_hex(32))
# The app every service serves in tests unless a test declares its own.
os.environ.setdefault("TANDEM_APPS", "tandem_catalog.app:app")

pytest_plugins = ["tandem.testing.infra"]
