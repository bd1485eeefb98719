"""A `loopml serve` replica killed with SIGKILL mid-traffic and started again: its request log keeps every
answer acknowledged before the durability bound (docs/serving.md: the flush interval, 200 ms)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import loopml
from loopml.serving import read_segments

from .conftest import free_port

pytestmark = pytest.mark.slow
FLUSH_MS = 200
SLACK_MS = 150  # scheduling and fsync delays on a loaded shared machine; not part of the bound


def _deploy(home: Path) -> None:
    frame = pd.DataFrame({"temp": [0.1, 0.4, 0.8, 0.6], "hum": [0.3, 0.5, 0.7, 0.9]})
    loopml.set_tracking_uri(str(home))
    try:
        with loopml.start_run(experiment="bike-demand") as run:
            model = LinearRegression().fit(frame, 3 * frame["temp"])
            version = run.log_model(model, name="bike-demand", input_example=frame[:2], register=True)
    finally:
        loopml.set_tracking_uri(None)
    with loopml.Client(home=home) as client:
        client.deployments.deploy("bike-demand", f"bike-demand/{version.version}")


def _start(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(home)
    replica = subprocess.Popen(
        [str(Path(sys.executable).with_name("loopml")), "serve", "--deployments", "bike-demand", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert replica.poll() is None, "the replica exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                return replica
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the replica was not ready within 60 s")


def test_a_killed_replica_keeps_every_answer_older_than_the_flush_interval(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _deploy(home)
    port = free_port()
    replica = _start(home, port)
    acknowledged: list[tuple[str, int]] = []  # (request id, when its answer arrived)
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            while not stop.is_set():
                try:
                    answer = http.post(
                        "/v1/deployments/bike-demand/predict", json={"records": [{"temp": 0.5, "hum": 0.5}]}
                    )
                except httpx.TransportError:
                    return  # the replica is gone
                assert answer.status_code == 200, answer.text
                acknowledged.append((answer.headers["x-request-id"], time.time_ns()))

    sender = threading.Thread(target=traffic)
    sender.start()
    while len(acknowledged) < 300:
        time.sleep(0.01)
    time.sleep((FLUSH_MS + SLACK_MS) / 1000 + 0.1)  # the first 300 are now older than the bound
    killed_at = time.time_ns()
    replica.send_signal(signal.SIGKILL)
    replica.wait(10)
    stop.set()
    sender.join(10)

    # Started again, the replica recovers what the dead one left on disk; stopped cleanly, it seals it all.
    again = _start(home, port)
    again.send_signal(signal.SIGTERM)
    again.wait(30)

    logged = set(read_segments(home / "request-log" / "sealed").column("request_id").to_pylist())
    cutoff = killed_at - (FLUSH_MS + SLACK_MS) * 1_000_000
    must_keep = [request_id for request_id, at in acknowledged if at < cutoff]
    assert len(must_keep) >= 300
    assert [r for r in must_keep if r not in logged] == []
    # One client, one request at a time: besides the acknowledged answers, the log holds at most the one in
    # flight when the replica died (answered and logged, but never received).
    assert len(logged - {request_id for request_id, _ in acknowledged}) <= 1
