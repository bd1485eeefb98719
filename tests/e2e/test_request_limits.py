"""Request limits over a real socket: a `loopml server` process refuses a large body it will not serve
(no valid token, or over the limit) without reading it, and without its memory growing by the body's size."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .conftest import ADMIN, ServerProcess, free_port

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
SEARCH = "/api/v1/runs/search"


@dataclass
class Body:
    """100 MiB of JSON-ish bytes, streamed; counts the chunks the client got to send."""

    chunks: int = 100
    sent: int = 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            self.sent += 1
            yield b" " * MIB


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak so far) of a process, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A `loopml server` on SQLite (what is measured does not depend on the database) with a 4 MiB limit."""
    process = ServerProcess(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'loopml.db'}",
        port=free_port(),
        extra_env={"LOOPML_MAX_REQUEST_BYTES": str(4 * MIB)},
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def post(server: ServerProcess, body: Body, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=server.uri, timeout=120) as client:
        return client.post(SEARCH, content=iter(body), headers={"Content-Type": "application/json", **headers})


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_an_unauthenticated_100_mib_body_is_refused_unread(server: ServerProcess, declared: bool) -> None:
    assert server.process is not None
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=server.uri) as client:  # warm the server up: imports, first queries
        created = client.post("/api/v1/experiments", json={"name": "warm"}, headers=admin)
        assert created.status_code == 200, created.text
        warm = client.post(SEARCH, json={"experiment_ids": [created.json()["experiment"]["id"]]}, headers=admin)
        assert warm.status_code == 200, warm.text
    before = memory_kib(server.process.pid)

    body = Body()
    headers = {"Content-Length": str(body.chunks * MIB)} if declared else {}
    response = post(server, body, headers)

    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthenticated"
    assert body.sent < body.chunks  # the server stopped reading: the client never got to send it all
    after = memory_kib(server.process.pid)
    grown_mib = (after["VmHWM"] - before["VmHWM"]) / 1024
    assert grown_mib < 40, f"server peak memory grew by {grown_mib:.0f} MiB for a body it refused"


def test_a_streamed_body_over_the_limit_is_413_and_cut_off(server: ServerProcess) -> None:
    body = Body()
    response = post(server, body, {"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert f"larger than {4 * MIB} bytes" in error["message"]
    assert body.sent < body.chunks
