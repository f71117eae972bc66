"""What the e2e session runs with: profile, seed, its own port block and directories.

The e2e stack never shares anything with ``make run`` (9092/27017/6379, ``.cache/tandem/stack``)
or the ``make test`` stack (19092/27117/16379, ``stack-test``): it has its own port block and
``TANDEM_STACK_DIR``. Every port is an environment variable so two sessions can coexist.
"""

from __future__ import annotations

import dataclasses
import os
import random
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Profile = Literal["quick", "full"]

REPO = Path(__file__).resolve().parents[3]
E2E_DIR = REPO / "tests-e2e"
RESULTS_DIR = E2E_DIR / "results"
LOGS_DIR = RESULTS_DIR / "logs"
STACK_SCRIPT = REPO / "deploy" / "local" / "stack.py"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def free_port() -> int:
    """A port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LoadProfile:
    """Sizes of everything a scenario does; ``quick`` must fit CI's 2 cores comfortably."""

    name: Profile
    clients: int
    commands_per_scenario: int
    kill_rounds: int
    model_steps: int
    model_clients: int
    model_faults: int
    schemathesis_max_examples: int
    convergence_timeout_s: float


QUICK = LoadProfile(
    name="quick",
    clients=4,
    commands_per_scenario=120,
    kill_rounds=2,
    model_steps=150,
    model_clients=3,
    model_faults=2,
    schemathesis_max_examples=25,
    convergence_timeout_s=90.0,
)
FULL = LoadProfile(
    name="full",
    clients=8,
    commands_per_scenario=800,
    kill_rounds=5,
    model_steps=1200,
    model_clients=6,
    model_faults=6,
    schemathesis_max_examples=150,
    convergence_timeout_s=180.0,
)


@dataclass(frozen=True)
class E2EConfig:
    profile: LoadProfile
    seed: int
    kafka_port: int
    kafka_controller_port: int
    mongo_port: int
    redis_port: int
    stack_dir: Path
    logs_dir: Path
    results_dir: Path
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))

    @classmethod
    def from_env(cls) -> E2EConfig:
        name = os.environ.get("TANDEM_E2E_PROFILE", "quick").strip().lower()
        if name not in {"quick", "full"}:
            raise ValueError(f"TANDEM_E2E_PROFILE must be quick or full, not {name!r}")
        raw_seed = os.environ.get("TANDEM_E2E_SEED")
        seed = int(raw_seed) if raw_seed else random.SystemRandom().randrange(1, 2**31)
        profile = QUICK if name == "quick" else FULL
        if os.environ.get("TANDEM_E2E_CONVERGENCE_TIMEOUT"):
            profile = dataclasses.replace(
                profile, convergence_timeout_s=float(os.environ["TANDEM_E2E_CONVERGENCE_TIMEOUT"])
            )
        return cls(
            profile=profile,
            seed=seed,
            kafka_port=_env_int("TANDEM_E2E_KAFKA_PORT", 29092),
            kafka_controller_port=_env_int("TANDEM_E2E_KAFKA_CONTROLLER_PORT", 29093),
            mongo_port=_env_int("TANDEM_E2E_MONGO_PORT", 27217),
            redis_port=_env_int("TANDEM_E2E_REDIS_PORT", 26379),
            stack_dir=Path(
                os.environ.get("TANDEM_E2E_STACK_DIR", str(REPO / ".cache/tandem/stack-e2e"))
            ),
            logs_dir=LOGS_DIR,
            results_dir=RESULTS_DIR,
        )

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"
