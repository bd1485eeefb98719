"""`make demo` runs the quickstart: it must work from a fresh store and show the whole path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart" / "quickstart.py"


@pytest.mark.slow
@pytest.mark.timeout(1500)  # the two demo scripts' own limits (600 s + 900 s), not the suite's 300 s
def test_the_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(tmp_path / "loopml-data")
    done = subprocess.run(
        [sys.executable, str(QUICKSTART)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "best run: hgb-depth" in out
    assert "alias champion -> 1; loaded by alias" in out
    assert out.count("  2012-") == 12
    assert "audit log: intact" in out

    done = subprocess.run(
        [sys.executable, str(QUICKSTART.with_name("loop.py"))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "deployment bike-demand: promoted" in out
    assert "analysis: success -> promote" in out
    assert "failed ->" not in out  # the same outcome on a busy machine: no latency noise fails the canary
    assert "quality mae" in out  # the month's labels reached the analysis
    assert "alias champion -> 2" in out
    assert "monitor over the request log" in out
    assert "drifted: " in out and "temp" in out
    assert (tmp_path / "loopml-data" / "monitor-report.html").is_file()
