"""The wheel installs into a fresh virtual environment and runs an app outside this repo."""

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[3]

APP = textwrap.dedent(
    """
    import asyncio
    from tandem import Command, CommandHandler, Success, get_mediator

    class Greet(Command[str]):
        name: str

    class GreetHandler(CommandHandler[Greet, str]):
        async def handle(self, command):
            return Success(f"hello {command.name}")

    async def main():
        mediator = get_mediator(new_instance=True)
        mediator.register_command_handler(Greet, GreetHandler())
        result = await mediator.execute_command(Greet(name="wheel"))
        print(result.value)

    asyncio.run(main())
    """
)


def run(*args: str, cwd: Path) -> str:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_wheel_installs_and_runs(tmp_path):
    uv = shutil.which("uv")
    assert uv, "uv is needed to build the wheel"
    dist = tmp_path / "dist"
    run(uv, "build", "--package", "tandem", "--wheel", "--out-dir", str(dist), cwd=REPO)
    wheel = next(dist.glob("tandem-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "tandem/py.typed" in names
    assert "tandem/api/endpoints.py" in names
    venv = tmp_path / "venv"
    run(uv, "venv", "--python", sys.executable, str(venv), cwd=tmp_path)
    python = venv / "bin" / "python"
    # The local cache makes this fast; the index is still reachable for a cold cache.
    run(uv, "pip", "install", "--python", str(python), str(wheel), cwd=tmp_path)
    (tmp_path / "app.py").write_text(APP)
    assert run(str(python), "app.py", cwd=tmp_path).strip().splitlines()[-1] == "hello wheel"
    assert run(str(python), "-c", "import tandem.api, tandem.testing", cwd=tmp_path) == ""
