"""examples/adult/fairness_gate.py: the fairness gate blocks the model as trained and passes the fixed one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "adult" / "fairness_gate.py"


@pytest.mark.slow
def test_the_fairness_gate_blocks_the_biased_model_and_passes_the_fixed_one(tmp_path: Path) -> None:
    pytest.importorskip("loopml.gates", reason="the gates of issue 12 (h/evalgate) are not in this build yet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update({"LOOPML_HOME": str(tmp_path / "loopml-data"), "OMP_NUM_THREADS": "1"})
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    blocked, passed = out.split("gate of adult-income/2")
    assert "gate of adult-income/1: BLOCKED" in blocked
    assert "fail   sex: demographic_parity_ratio >= 0.8" in blocked
    assert ": PASSED" in passed and "pass   sex: demographic_parity_ratio >= 0.8" in passed
    assert "champion -> 1 refused" in out and "champion -> 2" in out
