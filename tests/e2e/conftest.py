"""A real `loopml server` process on a real socket, on SQLite or PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ADMIN = "lml_e2e_admin_secret_0123456789abcdef"
STARTUP_SECONDS = 120
"""Generous: on a loaded shared machine, interpreter start-up and migrations alone have taken over 30 s."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    home: Path
    database_url: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
        env.update(
            LOOPML_HOME=str(self.home),
            LOOPML_DATABASE_URL=self.database_url,
            LOOPML_ADMIN_TOKEN=ADMIN,
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        loopml = Path(sys.executable).parent / "loopml"
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.home / "server.log"
        with open(log, "ab") as sink:
            self.process = subprocess.Popen(
                [str(loopml), "server", "--port", str(self.port)],
                env=self.env(),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"loopml server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.uri}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()  # a server that never answered is not left running behind the failed test
        raise RuntimeError(f"loopml server did not answer its health route within {STARTUP_SECONDS} s")

    def kill_hard(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A running `loopml server` (admin token ADMIN) on the parametrised database."""
    process = ServerProcess(home=tmp_path / "home", database_url=db_url, port=free_port())
    process.start()
    try:
        yield process
    finally:
        process.stop()
