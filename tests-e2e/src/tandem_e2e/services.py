"""The real service processes, started through their real entry points (``python -m ...``).

Each process gets its own session (process group) so a SIGKILL takes every child with it, and
each is registered in :data:`_LIVE` so an ``atexit`` hook kills whatever a crashed test run
left behind. Output goes to ``tests-e2e/results/logs/<name>.log`` (appended across restarts,
with a banner per start) for debugging a failed scenario.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tandem_e2e.converge import wait_sync

_LIVE: set[ServiceProcess] = set()


class ServiceStartError(RuntimeError):
    pass


class ServiceProcess:
    def __init__(
        self,
        name: str,
        module: str,
        port: int,
        env: dict[str, str],
        log_dir: Path,
        args: tuple[str, ...] = (),
        ready_path: str = "/readyz",
    ) -> None:
        self.name = name
        self.module = module
        self.port = port
        self.env = env
        self.args = args
        self.ready_path = ready_path
        self.log_file = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.stops = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running():
            return
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", self.module, *self.args]
        with self.log_file.open("ab") as out:
            banner = f"\n--- e2e start #{self.starts + 1} {time.strftime('%H:%M:%S')}: {cmd}\n"
            out.write(banner.encode())
            out.flush()
            self.proc = subprocess.Popen(
                cmd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.starts += 1
        _LIVE.add(self)

    def ready(self) -> bool:
        try:
            response = httpx.get(self.base_url + self.ready_path, timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise ServiceStartError(
                    f"{self.name} exited with {self.returncode()} during start-up; "
                    f"log tail:\n{self.log_tail()}"
                )
            if self.ready():
                return
            time.sleep(0.2)
        raise ServiceStartError(
            f"{self.name} not ready on {self.base_url}{self.ready_path} within {timeout:.0f}s; "
            f"log tail:\n{self.log_tail()}"
        )

    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM (the service drains), then SIGKILL after ``grace``."""
        if not self.running():
            return
        self.signal(signal.SIGTERM)
        if not wait_sync(lambda: not self.running(), timeout=grace):
            self.signal(signal.SIGKILL)
            wait_sync(lambda: not self.running(), timeout=10)
        self.stops += 1
        _LIVE.discard(self)

    def kill(self) -> None:
        """SIGKILL: no drain, no offset commit, no flush."""
        if not self.running():
            return
        self.signal(signal.SIGKILL)
        wait_sync(lambda: not self.running(), timeout=10)
        self.kills += 1
        _LIVE.discard(self)

    def restart(self, timeout: float = 90.0) -> None:
        self.stop()
        self.start()
        self.wait_ready(timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def run_cli(
    module: str, args: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """A one-shot command of a service (``python -m projector dlq list``)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@atexit.register
def _kill_leftovers() -> None:
    for service in list(_LIVE):
        service.signal(signal.SIGKILL)
    _LIVE.clear()


def kill_all() -> None:
    _kill_leftovers()
