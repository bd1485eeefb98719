"""The command lines of docs/server.md's token example run as written against a real `loopml server`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import ADMIN, ServerProcess, free_port

pytestmark = pytest.mark.slow

PAGE = Path(__file__).resolve().parents[2] / "docs" / "server.md"
DOCUMENTED_URI = "http://127.0.0.1:8080"


def token_example() -> list[str]:
    """The lines of the shell block that shows `tokens create`, without the `export` of a placeholder token."""
    blocks = re.findall(r"^```\n(.*?)^```", PAGE.read_text(), re.DOTALL | re.MULTILINE)
    [block] = [b for b in blocks if "tokens create" in b]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("export ")]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'loopml.db'}", port=free_port()
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_the_documented_tokens_create_command_works_against_a_server(server: ServerProcess, tmp_path: Path) -> None:
    lines = token_example()
    assert any(line.startswith("loopml ") and "tokens create" in line for line in lines)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(
        LOOPML_TOKEN=ADMIN,
        LOOPML_HOME=str(tmp_path / "not-the-server"),  # a command that ignored the server would write here
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    for line in lines:
        command = line.split("  #")[0].replace(DOCUMENTED_URI, server.uri)
        done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"

    tokens = httpx.get(f"{server.uri}/api/v1/tokens", headers={"Authorization": f"Bearer {ADMIN}"}).json()["tokens"]
    [ci] = [t for t in tokens if t["name"] == "ci"]
    assert (ci["role"], ci["project"]) == ("editor", "bike")
