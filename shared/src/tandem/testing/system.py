"""The three services as real processes, serving the apps a test names, on real servers.

For tests that prove a whole path (command over HTTP, Kafka, projector, read model, read,
WebSocket) the way users run it: ``python -m command_service``, ``python -m projector run``
and ``python -m query_service``, each with ``TANDEM_APPS``. An app declared inside a test
module is served too: pass the module's directory in ``pythonpath`` and name it
``module:attribute`` (the processes import it the way the runtime imports any app).

    async with running_system(infra.as_env(), apps=["test_counter:app"],
                              pythonpath=[Path(__file__).parent], name=unique_name) as system:
        httpx.post(f"{system.commands}/api/counters", ...)

Every run gets its own databases, topic prefix and consumer group (``name``), so tests never
see each other's data. Processes are stopped with SIGTERM (then SIGKILL) when the block ends.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

START_TIMEOUT_S = 60.0
SERVICE_COMMANDS = (("command_service",), ("projector", "run"), ("query_service",))
"""``python -m <these>``: how users start the three services (docs/your-own-domain.md)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServiceProcess:
    module: str
    args: tuple[str, ...]
    env: dict[str, str]
    port: int
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module, *self.args, env=self.env
        )
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        async with httpx.AsyncClient() as http:
            while asyncio.get_running_loop().time() < deadline:
                if self.process.returncode is not None:
                    raise AssertionError(f"{self.module} exited ({self.process.returncode})")
                try:
                    if (await http.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.module} was not ready at {self.url} in {START_TIMEOUT_S}s")

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 20)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@dataclass
class RunningSystem:
    """URLs of the running services and the environment they share (for CLI runs)."""

    env: dict[str, str]
    command: ServiceProcess
    query: ServiceProcess
    projectors: list[ServiceProcess] = field(default_factory=list)

    @property
    def commands(self) -> str:
        return self.command.url

    @property
    def queries(self) -> str:
        return self.query.url

    @property
    def ws(self) -> str:
        return self.query.url.replace("http://", "ws://")

    async def projector_cli(self, *args: str, timeout: float = 300.0) -> tuple[int, str]:
        """Run ``python -m projector <args>`` with the system's environment; (exit code, output)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "projector",
            *args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        return int(proc.returncode or 0), out.decode(errors="replace")


@asynccontextmanager
async def running_system(
    infra_env: Mapping[str, str],
    *,
    apps: Sequence[str],
    name: str,
    pythonpath: Sequence[Path] = (),
    projector_sets: Sequence[Sequence[str]] = ((),),
    extra_env: Mapping[str, str] | None = None,
) -> AsyncIterator[RunningSystem]:
    """Start the three services for ``apps``; one projector process per read-model set in
    ``projector_sets`` (``()``: every read model, in one group)."""
    suffix = name.replace("-", "_")
    path = os.pathsep.join([*(str(p) for p in pythonpath), os.environ.get("PYTHONPATH", "")])
    env = {
        **os.environ,
        **infra_env,
        "TANDEM_APPS": ",".join(apps),
        "TANDEM_ENVIRONMENT": os.environ.get("TANDEM_ENVIRONMENT", "test"),
        "TANDEM_LOG_LEVEL": "WARNING",
        "TANDEM_MONGO_WRITE_DB": f"w_{suffix}",
        "TANDEM_MONGO_READ_DB": f"r_{suffix}",
        "TANDEM_TOPIC_PREFIX": f"{name}.",
        "TANDEM_PARTITIONS": "2",
        "PYTHONPATH": path.rstrip(os.pathsep),
        **(extra_env or {}),
    }

    def process(argv: tuple[str, ...], **more: str) -> ServiceProcess:
        port = free_port()
        env_ = {**env, "TANDEM_HTTP_PORT": str(port), **more}
        return ServiceProcess(argv[0], argv[1:], env_, port)

    command, projector, query = SERVICE_COMMANDS
    system = RunningSystem(
        env,
        process(command),
        process(query),
        [
            process(
                projector,
                TANDEM_READ_MODELS=",".join(chosen),
                TANDEM_GROUP_ID=f"{name}.{'.'.join(chosen) or 'all'}",
            )
            for chosen in projector_sets
        ],
    )
    async with AsyncExitStack() as stack:
        for service in (*system.projectors, system.command, system.query):
            stack.push_async_callback(service.stop)
            await service.start()
        yield system
