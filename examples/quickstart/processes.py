"""Start `loopml server` and `loopml serve` replicas as separate processes, as a user does, and stop them again.

    with LocalStack(Path("loopml-data"), settings={"LOOPML_MONITOR_INTERVAL_SECONDS": "1"}) as stack:
        stack.start_server()                       # waits for GET /api/v1/health, with a deadline
        client = stack.client()                    # lm.Client over HTTP with the admin token
        ...
        replica = stack.start_replica("bike-demand", seal_seconds=1)   # waits for GET /health
        httpx.post(f"{replica}/v1/deployments/bike-demand/predict", json=...)

Every process starts in its own process group (so a Ctrl-C in the terminal reaches only this script, which
then stops them in order); leaving the `with` block, an exception, SIGINT, SIGTERM or interpreter exit stop
each group with SIGTERM, then SIGKILL after a deadline. Ports are chosen free; each process's output goes to
`<home>/logs/<name>.log`. Only the command line, REST and `import loopml as lm` are used.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType, TracebackType

import httpx

import loopml as lm


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def loopml_command() -> list[str]:
    """The `loopml` command of this interpreter's environment (its console script, else `python -m`)."""
    script = Path(sys.executable).with_name("loopml")
    if script.is_file():
        return [str(script)]
    found = shutil.which("loopml")
    return [found] if found else [sys.executable, "-c", "from loopml.cli import main; main()"]


class ProcessFailed(RuntimeError):
    """A process exited, or did not become healthy before its deadline; the message holds its log's tail."""


class LocalStack:
    """A `loopml server` and its serving replicas on one machine, sharing `home` (SQLite + files)."""

    def __init__(self, home: Path, settings: dict[str, str] | None = None, start_seconds: float = 120.0) -> None:
        self.home = home.resolve()
        self.start_seconds = start_seconds
        self.admin_token = secrets.token_urlsafe(32)
        self.server_url: str | None = None
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
        self._env.update(settings or {})
        self._env.update({"LOOPML_HOME": str(self.home), "LOOPML_ADMIN_TOKEN": self.admin_token})
        self._processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._previous_handlers: dict[int, object] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        atexit.register(self.stop)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        atexit.unregister(self.stop)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Unwind the script (its finally blocks and this stack's __exit__ run), then exit 128 + signal.
        raise SystemExit(128 + signum)

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop every process started here, newest first: SIGTERM to its group, SIGKILL after `grace_seconds`."""
        while self._processes:
            _name, process = self._processes.pop()
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(grace_seconds)
                except ProcessLookupError:
                    pass
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            with contextlib.suppress(ProcessLookupError, PermissionError):  # what it left in its group (workers)
                os.killpg(process.pid, signal.SIGKILL)

    @property
    def pids(self) -> list[int]:
        return [process.pid for _name, process in self._processes]

    # -- processes ---------------------------------------------------------------------------------------------
    def _start(self, name: str, arguments: list[str], health_url: str) -> None:
        log = (self.home / "logs" / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [*loopml_command(), *arguments],
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as a whole, and no terminal Ctrl-C
        )
        log.close()
        self._processes.append((name, process))
        deadline = time.monotonic() + self.start_seconds
        while True:
            if process.poll() is not None:
                raise ProcessFailed(f"{name} exited with code {process.returncode}:\n{self.log_tail(name)}")
            try:
                if httpx.get(health_url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ProcessFailed(f"{name} not healthy after {self.start_seconds:.0f} s:\n{self.log_tail(name)}")
            time.sleep(0.1)

    def log_tail(self, name: str, characters: int = 3000) -> str:
        path = self.home / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-characters:] if path.is_file() else ""

    def start_server(self) -> str:
        """`loopml server` on a free port; its URL once healthy."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        self._start("server", ["server", "--host", "127.0.0.1", "--port", str(port)], f"{url}/api/v1/health")
        self.server_url = url
        return url

    def start_replica(self, deployments: str, seal_seconds: float = 1.0, name: str = "replica") -> str:
        """`loopml serve --deployments ...` on a free port, reading the server's store; its URL once healthy."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        arguments = ["serve", "--deployments", deployments, "--port", str(port), "--seal-seconds", str(seal_seconds)]
        self._start(name, [*arguments, "--poll-seconds", "0.2"], f"{url}/health")
        return url

    def client(self) -> lm.Client:
        """A client of the running server, with the admin token."""
        if self.server_url is None:
            raise RuntimeError("start_server() first")
        return lm.Client(tracking_uri=self.server_url, token=self.admin_token)

    def environment(self) -> dict[str, str]:
        """The environment for another process (a script, the `loopml` command) to talk to the server."""
        if self.server_url is None:
            raise RuntimeError("start_server() first")
        return {**self._env, "LOOPML_TRACKING_URI": self.server_url, "LOOPML_TOKEN": self.admin_token}
