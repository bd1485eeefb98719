"""The Bike Sharing feature-store example runs from a fresh store: training set with lineage, online scoring."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "features" / "bike_features.py"


@pytest.mark.slow
def test_the_feature_store_example_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(tmp_path / "loopml-data")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "feature_view weather_hourly v1 (create)" in out
    assert "joined from (('weather_hourly', 1),)" in out
    assert "registered models:/bike-demand-features/1" in out
    assert "the 07:00 reading" in out and "'weathersit': 2" in out
