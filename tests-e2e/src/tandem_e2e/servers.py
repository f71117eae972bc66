"""Kafka, the MongoDB-wire server and Redis, driven through ``deploy/local/stack.py``.

The stack script is the single owner of how servers start; the harness only gives it its own
ports and ``TANDEM_STACK_DIR``. It scrubs the caller's ``TANDEM_MONGO_URL``: with that variable
set, ``stack.py`` treats MongoDB as external and would silently not manage it (``make test``
exports it for the other tiers).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Literal

from tandem_e2e.config import STACK_SCRIPT, E2EConfig

ServerName = Literal["kafka", "mongo", "redis"]
ALL_SERVERS: tuple[ServerName, ...] = ("kafka", "mongo", "redis")
_SCRUBBED = (
    "TANDEM_MONGO_URL",
    "TANDEM_KAFKA_PORT",
    "TANDEM_KAFKA_CONTROLLER_PORT",
    "TANDEM_MONGO_PORT",
    "TANDEM_REDIS_PORT",
    "TANDEM_STACK_DIR",
)


class StackCommandError(RuntimeError):
    pass


class Servers:
    """One e2e stack; every call is synchronous and returns when the servers answer (or died)."""

    def __init__(self, config: E2EConfig) -> None:
        self.config = config
        self.env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        self.env.update(
            TANDEM_STACK_DIR=str(config.stack_dir),
            TANDEM_KAFKA_PORT=str(config.kafka_port),
            TANDEM_KAFKA_CONTROLLER_PORT=str(config.kafka_controller_port),
            TANDEM_MONGO_PORT=str(config.mongo_port),
            TANDEM_REDIS_PORT=str(config.redis_port),
        )
        self.events: list[tuple[float, str, str]] = []
        """(monotonic time, action, server) of every fault and recovery, for the report."""

    def _run(self, command: str, names: Iterable[ServerName], timeout: float = 300) -> str:
        args = [sys.executable, str(STACK_SCRIPT), command, *names]
        proc = subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0 and command != "status":
            raise StackCommandError(
                f"{' '.join(args[1:])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc.stdout

    def up(self, *names: ServerName) -> None:
        # stack.py's start-up check reads /proc/<pid>/cmdline to guard against pid reuse; a
        # server that rewrites its process title (redis-server does) can be caught mid-rewrite
        # and reported as "exited during start-up" although it runs. A second ``up`` finds
        # the live pid and only waits for readiness, so retry that one message.
        for attempt in range(3):
            try:
                self._run("up", names)
                break
            except StackCommandError as exc:
                if "exited during start-up" not in str(exc) or attempt == 2:
                    raise
        for name in names or ALL_SERVERS:
            self.events.append((time.monotonic(), "up", name))

    def down(self, *names: ServerName) -> None:
        """Stop gracefully (SIGTERM); for a server outage in a scenario."""
        self._run("down", names)
        for name in names or ALL_SERVERS:
            self.events.append((time.monotonic(), "down", name))

    def kill(self, *names: ServerName) -> None:
        """SIGKILL, the crash a server does not get to clean up after."""
        self._run("kill", names)
        for name in names or ALL_SERVERS:
            self.events.append((time.monotonic(), "kill", name))

    def restart(self, *names: ServerName) -> None:
        self.down(*names)
        self.up(*names)

    def status(self) -> dict[str, str]:
        """``{server: "ready" | "stopped" | "starting/unhealthy"}``."""
        out: dict[str, str] = {}
        for line in self._run("status", ()).splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in ALL_SERVERS:
                out[parts[0]] = parts[1]
        return out

    def pids(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for name in ALL_SERVERS:
            pid_file = self.config.stack_dir / f"{name}.pid"
            try:
                found[name] = int(pid_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return found
