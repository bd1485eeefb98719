"""`make demo` runs the closed loop on real processes: it must work from a fresh directory, close the loop, and
leave no process behind, also when interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart"
QUICKSTART = EXAMPLE / "quickstart.py"
LOOP = EXAMPLE / "loop.py"


def clean_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def gone(pid: int, deadline_seconds: float = 30) -> bool:
    """True once no process `pid` exists (polled until the deadline)."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
@pytest.mark.timeout(900)  # the loop's own deadline is 600 s; a busy CI machine is slow, never wrong
def test_the_demo_closes_the_loop_on_real_processes(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(LOOP), "--out", str(tmp_path / "demo"), "--deadline-seconds", "600"],
        cwd=tmp_path,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "best run: hgb-depth" in out  # quickstart.py trained on 2011 through the server
    assert "alert metric_drop opened" in out
    assert "loop triggered" in out  # by the server's retraining controller, not by the script
    assert "gate passed" in out
    assert "loop succeeded: champion bike-demand/2" in out
    assert "loop succeeded: weekly rmse" in out

    timeline = json.loads((tmp_path / "demo" / "timeline.json").read_text())
    summary = timeline["summary"]
    assert summary["succeeded"] and summary["loop"]["state"] == "succeeded" and summary["loop"]["version"] == 2
    assert summary["rmse_after"] < summary["rmse_before"]
    assert summary["gate"]["passed"] and summary["gate"]["challenger_rmse"] < summary["gate"]["champion_rmse"]
    whats = [event["what"] for event in timeline["events"]]
    order = ["loop triggered", "loop training", "loop registered", "gate passed", "loop rolling_out", "loop succeeded"]
    assert [whats.index(what) for what in order] == sorted(whats.index(what) for what in order)
    assert (tmp_path / "demo" / "monitor-report.html").stat().st_size > 10_000
    for pid in (event["pid"] for event in timeline["events"] if "pid" in event):
        assert gone(pid, 5), f"process {pid} outlived the demo"


STACK_SCRIPT = """
import sys, time
from pathlib import Path
sys.path.insert(0, {example!r})
from processes import LocalStack
with LocalStack(Path({home!r})) as stack:
    stack.start_server()
    print(stack.pids[-1], flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_demo_stops_the_processes_it_started(tmp_path: Path, signum: int) -> None:
    script = STACK_SCRIPT.format(example=str(EXAMPLE), home=str(tmp_path / "home"))
    with subprocess.Popen(
        [sys.executable, "-c", script], env=clean_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as demo:
        try:
            assert demo.stdout is not None and demo.stderr is not None
            line = demo.stdout.readline()  # printed once the server answered its health check
            assert line.strip().isdigit(), demo.stderr.read().decode()
            server = int(line)
            os.kill(server, 0)  # running
            demo.send_signal(signum)
            assert demo.wait(60) == 128 + signum
            assert gone(server), "the server outlived the interrupted demo"
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait()


def test_the_demo_refuses_an_output_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "loopml-data").mkdir()
    (tmp_path / "loopml-data" / "precious.txt").write_text("not the demo's")
    done = subprocess.run(
        [sys.executable, str(LOOP), "--out", str(tmp_path)], env=clean_environment(), capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "was not made by this demo" in done.stderr
    assert (tmp_path / "loopml-data" / "precious.txt").is_file()


def test_the_demo_refuses_a_pace_that_is_not_positive(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(LOOP), "--out", str(tmp_path), "--day-seconds", "0"],
        env=clean_environment(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "--day-seconds and --deadline-seconds must be positive" in done.stderr
    assert not (tmp_path / "loopml-data").exists()


@pytest.mark.slow
def test_the_quickstart_alone_runs_on_the_embedded_store(tmp_path: Path) -> None:
    env = clean_environment()
    env["LOOPML_HOME"] = str(tmp_path / "loopml-data")
    done = subprocess.run(
        [sys.executable, str(QUICKSTART)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "alias champion -> 1; loaded by alias" in done.stdout
    assert done.stdout.count("  2012-") == 12
    assert "audit log: intact" in done.stdout
