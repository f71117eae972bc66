"""`make run`: the local servers plus the three services, in one terminal, stopped by Ctrl-C.

Starts (or reuses) the servers of ``stack.py``, then command-service, query-service and one
projector per app (its read-model set, ``TANDEM_READ_MODELS``) as child processes of this
one, serving the apps of ``TANDEM_APPS`` (default: the catalog and orders; add your own to
the list), prints their URLs, and on Ctrl-C or SIGTERM stops the services (SIGTERM, then
SIGKILL after a grace period) and the servers this run started, so nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tandem.app import App, AppError, load_apps
from tandem.settings import TandemSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stack

APPS = "tandem_catalog.app:app,tandem_orders.app:app"
COMMANDS_PORT, QUERIES_PORT, FIRST_PROJECTOR_PORT = 8001, 8002, 8003
GRACE_SECONDS = 15.0


def app_specs() -> list[str]:
    """``TANDEM_APPS`` read by the services' own settings (comma-separated or a JSON list);
    the catalog and orders when it is not set."""
    if "TANDEM_APPS" not in os.environ:
        return APPS.split(",")
    return TandemSettings().apps


def services(apps: list[App]) -> dict[str, tuple[str, int, dict[str, str]]]:
    """name: (module, port, extra environment). A projector per app, so each app's read
    models are a consumer group of their own (as the deployments run them)."""
    found: dict[str, tuple[str, int, dict[str, str]]] = {
        "command-service": ("command_service", COMMANDS_PORT, {}),
        "query-service": ("query_service", QUERIES_PORT, {}),
    }
    port = FIRST_PROJECTOR_PORT
    for app in apps:
        if app.read_models:
            names = ",".join(rm.name for rm in app.read_models)
            found[f"projector-{app.name}"] = ("projector", port, {"TANDEM_READ_MODELS": names})
            port += 1
    return found


def service_env(port: int) -> dict[str, str]:
    mongo = stack.mongo_external() or f"mongodb://{stack.HOST}:{stack.MONGO_PORT}"
    return {
        **os.environ,
        "TANDEM_ENVIRONMENT": os.environ.get("TANDEM_ENVIRONMENT", "development"),
        "TANDEM_APPS": ",".join(app_specs()),
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


def print_urls(apps: list[App], running: dict[str, tuple[str, int, dict[str, str]]]) -> None:
    commands, queries = f"http://127.0.0.1:{COMMANDS_PORT}", f"http://127.0.0.1:{QUERIES_PORT}"
    print("\nTandem is running:")
    print(f"  command-service    {commands}/docs")
    print(f"  query-service      {queries}/docs")
    for app in apps:
        writes = ", ".join(f"{commands}{a.route}" for a in app.aggregates)
        reads = ", ".join(f"{queries}{rm.route}" for rm in app.read_models)
        live = ", ".join(
            f"ws://127.0.0.1:{QUERIES_PORT}/ws/{rm.name}" for rm in app.read_models if rm.live
        )
        print(f"  {app.name:<18} writes {writes}")
        print(f"  {'':<18} reads  {reads}" + (f"; live {live}" if live else ""))
        if app.static_dir is not None:
            print(f"  {'':<18} page   {queries}/")
    for name, (_module, port, extra) in running.items():
        if "TANDEM_READ_MODELS" in extra:
            print(f"  {name:<18} http://127.0.0.1:{port}/metrics ({extra['TANDEM_READ_MODELS']})")
    print("Press Ctrl-C to stop everything.\n", flush=True)


def main() -> int:
    try:
        apps = load_apps(app_specs())
    except (AppError, ValueError) as exc:  # what every service would refuse, said before any starts
        print(f"run: error: TANDEM_APPS: {exc}", file=sys.stderr)
        return 2
    running = services(apps)
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
        for name, (module, port, extra) in running.items():
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", module],
                env={**service_env(port), **extra},
                start_new_session=True,
            )
        for name, (_module, port, _extra) in running.items():
            wait_healthy(name, port, procs[name])
        print_urls(apps, running)
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
