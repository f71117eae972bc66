"""The bench's own servers (through ``deploy/local/stack.py``) and service processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import REPO, RESULTS


@dataclass(frozen=True)
class StackPorts:
    """A port block of its own, so the bench never meets ``make run`` or ``make test``."""

    kafka: int = 39092
    kafka_controller: int = 39093
    mongo: int = 37017
    redis: int = 36379
    directory: Path = REPO / ".cache" / "tandem" / "stack-bench"

    @classmethod
    def from_env(cls) -> StackPorts:
        e = os.environ
        return cls(
            kafka=int(e.get("BENCH_KAFKA_PORT", "39092")),
            kafka_controller=int(e.get("BENCH_KAFKA_CONTROLLER_PORT", "39093")),
            mongo=int(e.get("BENCH_MONGO_PORT", "37017")),
            redis=int(e.get("BENCH_REDIS_PORT", "36379")),
            directory=Path(e.get("BENCH_STACK_DIR", str(cls.directory))),
        )

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka}"

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis}/0"

    def server_pids(self) -> dict[str, int]:
        """The servers' pids from ``stack.py``'s pid files, so the CPU table shows them too."""
        pids: dict[str, int] = {}
        for name in ("kafka", "mongo", "redis"):
            try:
                pids[name] = int((self.directory / f"{name}.pid").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return pids

    def stack_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "TANDEM_MONGO_URL"}
        env.update(
            TANDEM_STACK_DIR=str(self.directory),
            TANDEM_KAFKA_PORT=str(self.kafka),
            TANDEM_KAFKA_CONTROLLER_PORT=str(self.kafka_controller),
            TANDEM_MONGO_PORT=str(self.mongo),
            TANDEM_REDIS_PORT=str(self.redis),
        )
        return env


def stack(ports: StackPorts, command: str) -> None:
    """``stack.py <command>`` for the bench's stack; raises with its output on failure."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "local" / "stack.py"), command],
        env=ports.stack_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"stack.py {command} failed:\n{proc.stdout}\n{proc.stderr}")


@dataclass
class Proc:
    """A child process started by the bench (own session, so its children stop with it)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return RESULTS / "logs" / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_http(self, path: str = "/healthz", timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited during start-up; see {self.log_path}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}{path}", timeout=2
                ) as resp:
                    if resp.status < 500:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {path} within {timeout:.0f}s")

    def stop(self, grace: float = 20.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()


def release_env(ports: StackPorts, http_port: int, **extra: str) -> dict[str, str]:
    """Environment of a service in release settings against the bench's stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update(
        TANDEM_ENVIRONMENT="production",
        TANDEM_APPS="tandem_catalog.app:app",
        TANDEM_LOG_LEVEL="WARNING",
        TANDEM_HTTP_HOST="127.0.0.1",
        TANDEM_HTTP_PORT=str(http_port),
        TANDEM_KAFKA_BOOTSTRAP_SERVERS=ports.kafka_bootstrap,
        TANDEM_MONGO_URL=ports.mongo_url,
        TANDEM_MONGO_WRITE_DB="bench_write",
        TANDEM_MONGO_READ_DB="bench_read",
        TANDEM_REDIS_URL=ports.redis_url,
        TANDEM_JWT_SECRET=JWT_SECRET,
        PYTHONOPTIMIZE="0",
    )
    env.update(extra)
    return env


JWT_SECRET = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def uvicorn_const(port: int) -> Proc:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.constapp:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return Proc("bare-fastapi", argv, dict(os.environ), port)
