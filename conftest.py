"""Root conftest: every test tier gets the real-server fixtures of ``tandem.testing.infra``."""

pytest_plugins = ["tandem.testing.infra"]
