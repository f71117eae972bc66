#!/usr/bin/env python3
"""Run Tandem's servers (Kafka, a MongoDB-wire server, Redis) on this machine without Docker.

    python deploy/local/stack.py up|down|status|logs|reset|kill [kafka|mongo|redis ...]

Standard library only, so it works before any virtual environment exists. Everything it
downloads or builds goes to one git-ignored cache (``TANDEM_CACHE_DIR``, default
``<repo>/.cache/tandem``); data, logs and pid files go to ``TANDEM_STACK_DIR`` (default
``<cache>/stack``), so a second stack (the e2e suite's) can run beside ``make run`` with its
own ports and directory. ``down`` and ``kill`` only signal processes whose pid file this tool
wrote, and only after checking the pid still runs the program it started.

Readiness means a real protocol answer: Kafka answers ApiVersions and a Metadata request that
lists a broker, the MongoDB-wire server answers ``ping`` over OP_MSG, Redis answers PING.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# SecantusDB's Rust server (crate secantus-mdb, WiredTiger storage): built once with
# `cargo install --locked` at this exact version; see docs/local-servers.md.
SECANTUS_VERSION = "0.5.3-beta.196"
# Newest broker with which aiokafka 0.14 passes our integration tests (idempotent producer with
# acks=all, consumer groups, manual commits); see docs/local-servers.md.
DEFAULT_KAFKA_VERSION = "4.4.0"


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


CACHE = Path(env("TANDEM_CACHE_DIR", str(REPO / ".cache" / "tandem")))
STACK = Path(env("TANDEM_STACK_DIR", str(CACHE / "stack")))
HOST = env("TANDEM_STACK_HOST", "127.0.0.1")
KAFKA_VERSION = env("TANDEM_KAFKA_VERSION", DEFAULT_KAFKA_VERSION)
KAFKA_PORT = int(env("TANDEM_KAFKA_PORT", "9092"))
KAFKA_CONTROLLER_PORT = int(env("TANDEM_KAFKA_CONTROLLER_PORT", str(KAFKA_PORT + 1)))
KAFKA_HEAP = env("TANDEM_KAFKA_HEAP", "512m")
MONGO_PORT = int(env("TANDEM_MONGO_PORT", "27017"))
REDIS_PORT = int(env("TANDEM_REDIS_PORT", "6379"))
MONGO_CACHE_SIZE = env("TANDEM_MONGO_CACHE_SIZE", "256M")
START_TIMEOUT = float(env("TANDEM_STACK_START_TIMEOUT", "120"))


class StackError(RuntimeError):
    """A server could not be fetched, started or reached; the message names it and its log."""


def log(msg: str) -> None:
    print(f"stack: {msg}", flush=True)


def run(cmd: list[str], what: str, log_file: Path, extra_env: dict[str, str] | None = None) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        proc = subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(extra_env or {})}
        )
    if proc.returncode != 0:
        raise StackError(f"{what} failed (exit {proc.returncode}); see {log_file}")


# --- protocol probes -----------------------------------------------------------------------


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def probe_redis(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=2) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        return s.recv(64).startswith(b"+PONG")


def _bson_doc(items: list[tuple[str, object]]) -> bytes:
    body = b""
    for key, value in items:
        k = key.encode() + b"\x00"
        if isinstance(value, int):
            body += b"\x10" + k + struct.pack("<i", value)
        elif isinstance(value, str):
            v = value.encode() + b"\x00"
            body += b"\x02" + k + struct.pack("<i", len(v)) + v
        else:  # pragma: no cover - the probe only sends ints and strings
            raise TypeError(type(value))
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def probe_mongo(port: int) -> bool:
    """Send ``{ping: 1}`` as an OP_MSG and look for ``ok: 1.0`` in the reply."""
    doc = _bson_doc([("ping", 1), ("$db", "admin")])
    msg = struct.pack("<I", 0) + b"\x00" + doc  # flagBits, section kind 0, body
    header = struct.pack("<iiii", 16 + len(msg), 1, 0, 2013)  # OP_MSG
    with socket.create_connection((HOST, port), timeout=3) as s:
        s.sendall(header + msg)
        (length,) = struct.unpack("<i", _recv_exact(s, 4))
        reply = _recv_exact(s, length - 4)
    # An "ok" double of 1.0 inside the reply document.
    return b"\x01ok\x00" + struct.pack("<d", 1.0) in reply


def _kafka_request(s: socket.socket, api_key: int, version: int, body: bytes) -> bytes:
    client = b"tandem-stack"
    header = struct.pack(">hhih", api_key, version, 7, len(client)) + client
    payload = header + body
    s.sendall(struct.pack(">i", len(payload)) + payload)
    (length,) = struct.unpack(">i", _recv_exact(s, 4))
    return _recv_exact(s, length)


def probe_kafka(port: int) -> bool:
    """ApiVersions must succeed and Metadata must list at least one broker."""
    with socket.create_connection((HOST, port), timeout=3) as s:
        resp = _kafka_request(s, 18, 0, b"")
        (_corr, error) = struct.unpack(">ih", resp[:6])
        if error != 0:
            return False
        resp = _kafka_request(s, 3, 1, struct.pack(">i", -1))  # Metadata v1, all topics
        (_corr, brokers) = struct.unpack(">ii", resp[:8])
        return bool(brokers > 0)


# --- servers -------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    probe: Callable[[int], bool]
    ensure: Callable[[], None]
    command: Callable[[], list[str]]
    prepare: Callable[[], None] = lambda: None
    external: Callable[[], str | None] = lambda: None
    environ: Callable[[], dict[str, str]] = dict

    @property
    def dir(self) -> Path:
        return STACK / self.name

    @property
    def pid_file(self) -> Path:
        return STACK / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return STACK / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().split()[0])
            exe_hint = self.pid_file.read_text().split(maxsplit=1)[1].strip()
        except (OSError, ValueError, IndexError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\x00", b" ").decode()
        except OSError:
            return None
        # Guard against pid reuse: the pid must still run the program we started.
        return pid if exe_hint in cmdline else None

    def answers(self) -> bool:
        try:
            return self.probe(self.port)
        except OSError:
            return False


def kafka_libs() -> Path:
    return CACHE / "kafka" / KAFKA_VERSION / "libs"


def ensure_kafka() -> None:
    libs = kafka_libs()
    if (libs / ".complete").exists():
        return
    if shutil.which("java") is None or shutil.which("mvn") is None:
        raise StackError(
            "kafka needs Java 17 and Maven on PATH (apt-get install openjdk-17-jre maven)"
        )
    log(f"kafka: fetching kafka_2.13 {KAFKA_VERSION} jars with Maven (first run only)")
    shutil.rmtree(libs, ignore_errors=True)
    run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(HERE / "kafka-pom.xml"),
            f"-Dkafka.version={KAFKA_VERSION}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ],
        "kafka: maven fetch",
        CACHE / "kafka" / "fetch.log",
    )
    (libs / ".complete").touch()


def kafka_prepare() -> None:
    d = STACK / "kafka"
    d.mkdir(parents=True, exist_ok=True)
    props = d / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{HOST}:{KAFKA_CONTROLLER_PORT}",
                f"listeners=PLAINTEXT://{HOST}:{KAFKA_PORT},CONTROLLER://{HOST}:{KAFKA_CONTROLLER_PORT}",
                f"advertised.listeners=PLAINTEXT://{HOST}:{KAFKA_PORT}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={d / 'data'}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=6",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "log.flush.interval.messages=9223372036854775807",
                "",
            ]
        )
    )
    (d / "log4j2.properties").write_text(
        "\n".join(
            [
                "status = warn",
                "appender.console.type = Console",
                "appender.console.name = STDOUT",
                "appender.console.layout.type = PatternLayout",
                "appender.console.layout.pattern = [%d] %p %m (%c)%n",
                "rootLogger.level = WARN",
                "rootLogger.appenderRef.stdout.ref = STDOUT",
                "logger.server.name = kafka.server.KafkaRaftServer",
                "logger.server.level = INFO",
                "logger.broker.name = kafka.server.BrokerServer",
                "logger.broker.level = INFO",
                "",
            ]
        )
    )
    if not (d / "data" / "meta.properties").exists():
        # The quorum is static (controller.quorum.voters), so format without --standalone.
        cluster_id = "MkU3OEVBNTcwNTJENDM2Qk"  # any base64 UUID; one node, so fixed is fine
        run(
            [
                "java",
                "-cp",
                f"{kafka_libs()}/*",
                f"-Dlog4j2.configurationFile={d / 'log4j2.properties'}",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(props),
                "--ignore-formatted",
            ],
            "kafka: storage format",
            STACK / "kafka.log",
        )


def kafka_command() -> list[str]:
    d = STACK / "kafka"
    return [
        "java",
        f"-Xmx{KAFKA_HEAP}",
        "-Xms128m",
        "-XX:+UseG1GC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={d / 'log4j2.properties'}",
        "-cp",
        f"{kafka_libs()}/*",
        "kafka.Kafka",
        str(d / "server.properties"),
    ]


def mongo_mode() -> str:
    """``external`` (``TANDEM_MONGO_URL``), ``mongod`` (one on PATH, unless
    ``TANDEM_MONGO_SERVER=secantusd-rs``) or ``secantusd-rs`` (the default)."""
    if os.environ.get("TANDEM_MONGO_URL"):
        return "external"
    choice = os.environ.get("TANDEM_MONGO_SERVER", "auto")
    if choice not in ("auto", "mongod", "secantusd-rs"):
        raise StackError(
            f"TANDEM_MONGO_SERVER must be auto, mongod or secantusd-rs, not {choice!r}"
        )
    if choice == "mongod" or (choice == "auto" and shutil.which("mongod")):
        return "mongod"
    return "secantusd-rs"


def secantus_bin() -> Path:
    return CACHE / "bin" / f"secantusd-rs-{SECANTUS_VERSION}"


def ensure_mongo() -> None:
    mode = mongo_mode()
    if mode == "mongod" and shutil.which("mongod") is None:
        raise StackError("mongo: TANDEM_MONGO_SERVER=mongod but no mongod on PATH")
    if mode != "secantusd-rs" or secantus_bin().exists():
        return
    if shutil.which("cargo") is None:
        raise StackError(
            "mongo: secantusd-rs is built from source with cargo; install Rust with rustup "
            "(https://rustup.rs), or put a mongod on PATH, or set TANDEM_MONGO_URL"
        )
    log(
        f"mongo: building secantusd-rs {SECANTUS_VERSION} with cargo install "
        "(first run only, ~12 min on 2 cores)"
    )
    build = CACHE / "build-secantus"
    shutil.rmtree(build, ignore_errors=True)
    run(
        [
            "cargo",
            "install",
            "secantus-mdb",
            "--version",
            f"={SECANTUS_VERSION}",
            "--locked",
            # It declares rust-version 1.98; older stable toolchains (1.95 checked) build it.
            "--ignore-rust-version",
            "--root",
            str(build),
        ],
        "mongo: cargo install secantus-mdb",
        CACHE / "secantus-build.log",
    )
    secantus_bin().parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(build / "bin" / "secantusd-rs"), secantus_bin())
    shutil.rmtree(build, ignore_errors=True)


def mongo_prepare() -> None:
    d = STACK / "mongo"
    (d / ("db" if mongo_mode() == "mongod" else "secantus")).mkdir(parents=True, exist_ok=True)
    if mongo_mode() == "secantusd-rs":
        # An explicit --config turns off the search for ./secantusd.toml, ~/.secantus/... and
        # /etc/secantus/..., so a file elsewhere on the machine never changes this server.
        (d / "secantusd.toml").write_text(
            "# Written by deploy/local/stack.py: every setting is a command-line flag.\n"
        )


def mongo_command() -> list[str]:
    d = STACK / "mongo"
    if mongo_mode() == "mongod":
        return ["mongod", "--dbpath", str(d / "db"), "--port", str(MONGO_PORT), "--bind_ip", HOST]
    return [
        str(secantus_bin()),
        f"--config={d / 'secantusd.toml'}",
        f"--host={HOST}",
        f"--port={MONGO_PORT}",
        f"--storage-path={d / 'secantus'}",  # WiredTiger files, not mongod's: a dir of its own
        # WiredTiger's cache (default 4G): bounded, as three stacks may run on one machine.
        f"--cache-size={MONGO_CACHE_SIZE}",
        # Log files are allocated in full; 128MB each by default.
        "--log-file-max=32MB",
        # What a standalone mongod is (compose runs one): no replica set advertised, so a
        # driver refuses transactions and change streams here as it would there.
        "--standalone",
        "--log-level=WARNING",
    ]


def mongo_environ() -> dict[str, str]:
    """Durability on SIGKILL: WiredTiger writes its log to the OS at each commit
    (``method=none``: no fsync, like a standalone mongod's journal between its 100 ms
    flushes). With the default a SIGKILL under load lost 45-103 acknowledged inserts.
    Without change streams the oplog is dead weight on every write, so it is off."""
    if mongo_mode() != "secantusd-rs":
        return {}
    return {
        "SECANTUS_WT_CONFIG_EXTRA": "transaction_sync=(enabled=true,method=none)",
        "SECANTUS_DISABLE_OPLOG": "1",
    }


def mongo_external() -> str | None:
    return os.environ.get("TANDEM_MONGO_URL") if mongo_mode() == "external" else None


def ensure_debian_package(binary: str, package: str) -> None:
    """Install Debian's ``package`` when ``binary`` is missing (once; ``TANDEM_ALLOW_APT=0``
    forbids it and turns the absence into a clear error)."""
    if shutil.which(binary):
        return
    allowed = os.environ.get("TANDEM_ALLOW_APT", "1") == "1" and shutil.which("apt-get")
    if not allowed:
        raise StackError(f"{binary} not on PATH (apt-get install {package})")
    log(f"{binary}: installing Debian's {package} with apt-get (first run only)")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    logf = CACHE / "apt.log"
    run([*sudo, "apt-get", "update", "-qq"], f"{binary}: apt-get update", logf)
    run(
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        f"{binary}: apt-get install {package}",
        logf,
        {"DEBIAN_FRONTEND": "noninteractive"},
    )


def ensure_redis() -> None:
    ensure_debian_package("redis-server", "redis-server")


def redis_command() -> list[str]:
    d = STACK / "redis"
    d.mkdir(parents=True, exist_ok=True)
    return [
        "redis-server",
        "--port",
        str(REDIS_PORT),
        "--bind",
        HOST,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(d),
        "--daemonize",
        "no",
        "--protected-mode",
        "no",
    ]


SERVERS: dict[str, Server] = {
    "kafka": Server("kafka", KAFKA_PORT, probe_kafka, ensure_kafka, kafka_command, kafka_prepare),
    "mongo": Server(
        "mongo",
        MONGO_PORT,
        probe_mongo,
        ensure_mongo,
        mongo_command,
        mongo_prepare,
        mongo_external,
        mongo_environ,
    ),
    "redis": Server("redis", REDIS_PORT, probe_redis, ensure_redis, redis_command),
}


# --- commands ------------------------------------------------------------------------------


def start(server: Server) -> bool:
    """Start the server unless it already runs; returns True if this call started it."""
    if server.external():
        log(f"{server.name}: using external server {server.external()}")
        return False
    if server.pid() is not None:
        return False
    if server.answers():
        raise StackError(
            f"{server.name}: port {server.port} is already taken by another process; "
            f"set TANDEM_{server.name.upper()}_PORT or stop it"
        )
    server.ensure()
    STACK.mkdir(parents=True, exist_ok=True)
    server.prepare()
    cmd = server.command()
    with server.log_file.open("ab") as out:
        out.write(f"\n--- start {time.strftime('%Y-%m-%dT%H:%M:%S')}: {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=STACK,
            env={**os.environ, **server.environ()},
        )
    server.pid_file.write_text(f"{proc.pid} {Path(cmd[0]).name}\n")
    return True


def wait_ready(server: Server) -> None:
    if server.external():
        return
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.answers():
            return
        # Liveness by /proc state, not by command line: redis-server rewrites its process
        # title while starting, which a cmdline check can catch half-written.
        raw = server.pid_file.read_text().split()[0] if server.pid_file.exists() else ""
        if not raw.isdigit() or not _alive(int(raw)):
            raise StackError(f"{server.name}: exited during start-up; see {server.log_file}")
        time.sleep(0.2)
    raise StackError(
        f"{server.name}: no protocol answer on {HOST}:{server.port} within {START_TIMEOUT:.0f}s; "
        f"see {server.log_file}"
    )


def stop(server: Server, sig: int = signal.SIGTERM, grace: float = 30.0) -> None:
    pid = server.pid()
    if pid is None:
        server.pid_file.unlink(missing_ok=True)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
    server.pid_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def selected(names: list[str]) -> list[Server]:
    unknown = [n for n in names if n not in SERVERS]
    if unknown:
        raise StackError(f"unknown server(s) {unknown}; choose from {list(SERVERS)}")
    return [SERVERS[n] for n in (names or list(SERVERS))]


def cmd_up(names: list[str]) -> None:
    servers = selected(names)
    for s in servers:
        started = start(s)
        if started:
            log(f"{s.name}: starting on {HOST}:{s.port} (log {s.log_file})")
    for s in servers:
        wait_ready(s)
        log(f"{s.name}: ready on {HOST}:{s.port}")


def cmd_down(names: list[str]) -> None:
    for s in selected(names):
        stop(s)
        log(f"{s.name}: stopped")


def cmd_kill(names: list[str]) -> None:
    for s in selected(names):
        stop(s, signal.SIGKILL, grace=5)
        log(f"{s.name}: killed")


def cmd_status(names: list[str]) -> int:
    bad = 0
    for s in selected(names):
        ext = s.external()
        if ext:
            print(f"{s.name:6} external {ext}")
            continue
        pid = s.pid()
        ok = s.answers()
        bad += not (ok and pid)
        if pid:
            state = "ready" if ok else "starting/unhealthy"
        else:
            state = "foreign-process" if ok else "stopped"  # the port answers, not our process
        print(f"{s.name:6} {state:18} {HOST}:{s.port:<6} pid={pid or '-':<8} log={s.log_file}")
    return 1 if bad else 0


def cmd_logs(names: list[str], lines: int) -> None:
    for s in selected(names):
        print(f"==> {s.log_file} <==")
        if s.log_file.exists():
            print("\n".join(s.log_file.read_text(errors="replace").splitlines()[-lines:]))


def cmd_reset(names: list[str]) -> None:
    cmd_down(names)
    for s in selected(names):
        shutil.rmtree(s.dir, ignore_errors=True)
        s.log_file.unlink(missing_ok=True)
        log(f"{s.name}: data removed")


def cmd_env() -> None:
    """Print the TANDEM_* connection variables for this stack (eval-able)."""
    mongo = mongo_external() or f"mongodb://{HOST}:{MONGO_PORT}"
    print(f"export TANDEM_KAFKA_BOOTSTRAP_SERVERS={HOST}:{KAFKA_PORT}")
    print(f"export TANDEM_MONGO_URL={mongo}")
    print(f"export TANDEM_REDIS_URL=redis://{HOST}:{REDIS_PORT}/0")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command",
        choices=["up", "down", "status", "logs", "reset", "kill", "env", "fetch", "browser"],
    )
    parser.add_argument("servers", nargs="*", help="kafka, mongo, redis (default: all)")
    parser.add_argument("-n", "--lines", type=int, default=50, help="log lines for 'logs'")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            cmd_up(args.servers)
        elif args.command == "down":
            cmd_down(args.servers)
        elif args.command == "kill":
            cmd_kill(args.servers)
        elif args.command == "status":
            return cmd_status(args.servers)
        elif args.command == "logs":
            cmd_logs(args.servers, args.lines)
        elif args.command == "reset":
            cmd_reset(args.servers)
        elif args.command == "env":
            cmd_env()
        elif args.command == "fetch":
            for s in selected(args.servers):
                s.ensure()
        elif args.command == "browser":  # the browser tests' headless Chromium
            ensure_debian_package("chromium", "chromium")
    except StackError as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
