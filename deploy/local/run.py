"""`make run`: the local servers plus the three services, in one terminal, stopped by Ctrl-C.

Starts (or reuses) the servers of ``stack.py``, then command-service, query-service and one
projector per read-model set (the catalog's, the orders') as child processes of this one,
serving both apps (``TANDEM_APPS``, overridable), prints their URLs, and on Ctrl-C or SIGTERM stops
the services (SIGTERM, then SIGKILL after a grace period) and the servers this run started,
so nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stack

APPS = "tandem_catalog.app:app,tandem_orders.app:app"
# name: (module, port, extra environment)
SERVICES: dict[str, tuple[str, int, dict[str, str]]] = {
    "command-service": ("command_service", 8001, {}),
    "query-service": ("query_service", 8002, {}),
    "projector": ("projector", 8003, {"TANDEM_READ_MODELS": "products,category_stats"}),
    "projector-orders": ("projector", 8004, {"TANDEM_READ_MODELS": "orders,customer_totals"}),
}
GRACE_SECONDS = 15.0


def service_env(port: int) -> dict[str, str]:
    mongo = stack.mongo_external() or f"mongodb://{stack.HOST}:{stack.MONGO_PORT}"
    return {
        **os.environ,
        "TANDEM_ENVIRONMENT": os.environ.get("TANDEM_ENVIRONMENT", "development"),
        "TANDEM_APPS": os.environ.get("TANDEM_APPS", APPS),
        "TANDEM_KAFKA_BOOTSTRAP_SERVERS": f"{stack.HOST}:{stack.KAFKA_PORT}",
        "TANDEM_MONGO_URL": mongo,
        "TANDEM_REDIS_URL": f"redis://{stack.HOST}:{stack.REDIS_PORT}/0",
        "TANDEM_HTTP_HOST": os.environ.get("TANDEM_HTTP_HOST", "127.0.0.1"),
        "TANDEM_HTTP_PORT": str(port),
    }


def wait_healthy(name: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} during start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{name} did not answer /healthz on port {port} within {timeout:.0f}s")


def stop_all(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    started = [s for s in stack.SERVERS.values() if stack.start(s)]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        for server in stack.SERVERS.values():
            stack.wait_ready(server)
        for name, (module, port, extra) in SERVICES.items():
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", module],
                env={**service_env(port), **extra},
                start_new_session=True,
            )
        for name, (_module, port, _extra) in SERVICES.items():
            wait_healthy(name, port, procs[name])
        print("\nTandem is running:")
        print("  live catalog page  http://127.0.0.1:8002/")
        print("  command-service    http://127.0.0.1:8001/docs")
        print("  query-service      http://127.0.0.1:8002/docs")
        print(
            "  orders             http://127.0.0.1:8001/api/orders, ws://127.0.0.1:8002/ws/orders"
        )
        print("  projector metrics  http://127.0.0.1:8003/metrics (catalog), :8004 (orders)")
        print("Press Ctrl-C to stop everything.\n", flush=True)
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}")
            time.sleep(0.5)
    except (RuntimeError, stack.StackError) as exc:
        print(f"run: error: {exc}", file=sys.stderr)
        code = 1
    finally:
        print("run: stopping services and servers", flush=True)
        stop_all(procs)
        for server in started:
            stack.stop(server)
        print("run: stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
