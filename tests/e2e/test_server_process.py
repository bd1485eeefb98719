"""End to end over real sockets and processes: concurrency, crash durability, cut-off uploads."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import loopml
from loopml.store import MetadataStore

from .conftest import ADMIN, ServerProcess

pytestmark = pytest.mark.slow
WRITER = str(Path(__file__).with_name("writer.py"))


def _stored_points(server: ServerProcess) -> dict[str, int]:
    store = MetadataStore.open(server.database_url)
    try:
        with store.read() as unit:
            return {run.id: unit.metrics.count(run.id) for run in unit.runs.get_many(_run_ids(unit))}
    finally:
        store.close()


def _run_ids(unit: object) -> list[str]:
    from sqlalchemy import text

    return [r[0] for r in unit.connection.execute(text("SELECT id FROM runs"))]  # type: ignore[attr-defined]


def test_eight_concurrent_writer_processes_lose_nothing(server: ServerProcess) -> None:
    writers = [
        subprocess.Popen(
            [sys.executable, WRITER, "concurrent", server.uri, ADMIN, "load", "10000"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(8)
    ]
    outputs = [w.communicate(timeout=240) for w in writers]
    assert [w.returncode for w in writers] == [0] * 8, [err.decode()[-1500:] for _, err in outputs]
    counts = _stored_points(server)
    assert len(counts) == 8
    assert sum(counts.values()) == 80_000
    with loopml.Client(server.uri, token=ADMIN) as client:
        assert client.audit.verify() == []


def test_every_acknowledged_point_survives_kill_9(server: ServerProcess, tmp_path: Path) -> None:
    with loopml.Client(server.uri, token=ADMIN) as client:
        run_id = client.runs.create("crash", "victim").id
    acks = tmp_path / "acks.txt"
    writer = subprocess.Popen([sys.executable, WRITER, "acknowledged", server.uri, ADMIN, run_id, str(acks)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not acks.exists() or len(acks.read_text().split()) < 20):
        time.sleep(0.05)
    server.kill_hard()
    writer.wait(60)
    acknowledged = int(acks.read_text().split()[-1])
    assert acknowledged >= 10_000
    server.start()
    stored = _stored_points(server)[run_id]
    # Everything acknowledged is there; at most the one batch in flight at the kill may also have landed.
    assert acknowledged <= stored <= acknowledged + 500
    with loopml.Client(server.uri, token=ADMIN) as client:
        history = client.runs.history(run_id, "loss")
        assert [m.step for m in history] == list(range(stored))
        assert client.audit.verify() == []


def test_an_upload_cut_off_midway_leaves_nothing(server: ServerProcess) -> None:
    with loopml.Client(server.uri, token=ADMIN) as client:
        run_id = client.runs.create("uploads", "cut").id
    announced, sent = 20 * 1024 * 1024, 3 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        head = (
            f"PUT /api/v1/runs/{run_id}/artifacts/model/big.bin HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {ADMIN}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {announced}\r\n\r\n"
        )
        sock.sendall(head.encode())
        chunk = b"x" * 65536
        for _ in range(sent // len(chunk)):
            sock.sendall(chunk)
    time.sleep(1.0)  # let the server notice the disconnect and clean up
    with loopml.Client(server.uri, token=ADMIN) as client:
        assert client.runs.artifacts(run_id) == []
    artifacts = server.home / "artifacts"
    leftovers = [p for p in artifacts.rglob("*") if p.is_file()] if artifacts.exists() else []
    assert leftovers == []


def test_a_restarted_server_removes_the_upload_a_crash_cut_off(server: ServerProcess) -> None:
    with loopml.Client(server.uri, token=ADMIN) as client:
        run_id = client.runs.create("uploads", "crash").id
    tmp = server.home / "artifacts" / "tmp"
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            f"PUT /api/v1/runs/{run_id}/artifacts/model/big.bin HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {ADMIN}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {20 * 1024 * 1024}\r\n\r\n".encode()
        )
        sock.sendall(b"x" * 3 * 1024 * 1024)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (tmp.exists() and any(p.stat().st_size for p in tmp.iterdir())):
            time.sleep(0.05)
        server.kill_hard()  # mid-upload: nothing gets to discard the temporary file
    (crashed,) = tmp.iterdir()
    os.utime(crashed, (0, 0))  # as if the restart came long after the crash
    (tmp / "in-flight").write_bytes(b"an upload to a replica sharing this root")

    server.start()

    assert [p.name for p in tmp.iterdir()] == ["in-flight"]
    with loopml.Client(server.uri, token=ADMIN) as client:
        assert client.runs.artifacts(run_id) == []


def test_artifact_names_over_a_real_socket_are_decoded_once_and_strictly(server: ServerProcess) -> None:
    with loopml.Client(server.uri, token=ADMIN) as client:
        run_id = client.runs.create("uploads", "names").id
    base = f"{server.uri}/api/v1/runs/{run_id}/artifacts"
    headers = {"Authorization": f"Bearer {ADMIN}"}

    for raw in ("model-%FF.bin", "caf%E9.csv"):
        refused = httpx.put(f"{base}/{raw}", content=b"x", headers=headers)
        assert refused.status_code == 400, refused.text
        assert "UTF-8" in refused.json()["error"]["message"]
    stored = httpx.put(f"{base}/caf%65%CC%81.csv", content=b"x", headers=headers)
    assert stored.status_code == 200, stored.text
    assert stored.json()["artifact"]["path"] == "caf\u00e9.csv"
    with loopml.Client(server.uri, token=ADMIN) as client:
        assert [a.path for a in client.runs.artifacts(run_id)] == ["caf\u00e9.csv"]
