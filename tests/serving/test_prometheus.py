"""A real Prometheus (the Debian `prometheus` package) scrapes a `loopml serve` replica over loopback.

Both are real processes on free ports: the replica serves a Bike Sharing model package, answers a few
predictions, and Prometheus, scraping every second, must report the target up and hold
`loopml_requests_total` with the deployment, model and version labels. Without the `prometheus` binary the
test is skipped, except in CI (CI=true), where that is a failure (.ci/run installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Packages

pytestmark = pytest.mark.slow

IN_CI = os.environ.get("CI", "").lower() == "true"
DEPLOYMENT = "bike-demand"
PREDICTIONS = 5


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        reason = "the `prometheus` binary is not installed (apt-get install prometheus)"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return found


def loopml_command() -> str:
    script = Path(sys.executable).with_name("loopml")
    return str(script) if script.exists() else (shutil.which("loopml") or pytest.fail("no `loopml` console script"))


class Process:
    """A child process with its output in a file, stopped (then killed if it lingers) on exit."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.stream = log.open("wb")
        self.popen = subprocess.Popen(args, stdout=self.stream, stderr=subprocess.STDOUT)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=15)
        self.stream.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            process.stop()


def poll(what: str, check: Callable[[], Any], processes: list[Process], timeout: float = 90.0) -> Any:
    """Call `check` until it returns something truthy; fail with the processes' output if it never does."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        for process in processes:
            if process.popen.poll() is not None:
                pytest.fail(f"{process.popen.args[0]} exited with {process.popen.returncode}:\n{process.tail()}")
        try:
            result = check()
        except httpx.TransportError as exc:
            result, last = None, exc
        if result:
            return result
        time.sleep(0.25)
    logs = "\n---\n".join(p.tail() for p in processes)
    pytest.fail(f"timed out waiting for {what} (last: {last!r}):\n{logs}")


def test_prometheus_scrapes_a_serving_replica(
    request: pytest.FixtureRequest, tmp_path: Path, processes: list[Process]
) -> None:
    prometheus = prometheus_binary()  # before the model is trained: a skip should cost nothing
    packages: Packages = request.getfixturevalue("packages")
    serve_port, prometheus_port = free_port(), free_port()
    replica = f"http://127.0.0.1:{serve_port}"
    processes.append(
        Process(
            [
                loopml_command(),
                "serve",
                "--model-dir",
                str(packages.v1),
                "--name",
                DEPLOYMENT,
                "--port",
                str(serve_port),
            ],
            tmp_path / "serve.log",
        )
    )
    with httpx.Client(base_url=replica, timeout=10) as client:
        poll("the replica to be ready", lambda: client.get("/v2/health/ready").status_code == 200, processes)
        labels = set()
        for start in range(PREDICTIONS):
            response = client.post("/invocations", json={"dataframe_records": packages.records(1, start)})
            assert response.status_code == 200, response.text
            labels.add(response.headers["x-loopml-model-version"])
    [served] = labels
    model, version = served.split("/")

    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: loopml-serving\n"
        "    scrape_interval: 1s\n"
        "    scrape_timeout: 1s\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{serve_port}']\n"
    )
    processes.append(
        Process(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            tmp_path / "prometheus.log",
        )
    )
    with httpx.Client(base_url=f"http://127.0.0.1:{prometheus_port}", timeout=10) as api:
        poll("Prometheus to be ready", lambda: api.get("/-/ready").status_code == 200, processes)

        def target_up() -> dict[str, Any] | None:
            targets = api.get("/api/v1/targets").json()["data"]["activeTargets"]
            mine = [t for t in targets if t["scrapeUrl"] == f"{replica}/metrics"]
            return mine[0] if mine and mine[0]["health"] == "up" else None

        target = poll("the replica's target to be up", target_up, processes)
        assert target["labels"]["job"] == "loopml-serving"
        assert target["lastError"] == ""

        def requests_series() -> list[dict[str, Any]]:
            body = api.get("/api/v1/query", params={"query": "loopml_requests_total"}).json()
            assert body["status"] == "success", body
            return [s for s in body["data"]["result"] if s["metric"].get("deployment") == DEPLOYMENT]

        [series] = poll("loopml_requests_total in Prometheus", requests_series, processes)
    metric = series["metric"]
    assert (metric["model"], metric["version"], metric["status"]) == (model, version, "200")
    assert metric["instance"] == f"127.0.0.1:{serve_port}"
    assert float(series["value"][1]) == PREDICTIONS
