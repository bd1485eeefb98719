"""Gate on 100,000 evaluation rows with fairness over 2 attributes (issue 12): loopml vs `mlflow.evaluate`.

    .venv/bin/python benchmarks/gate.py [--rows 100000] [--reps 3] [--anchor-reps 1]

The same logistic regression (trained here on the Adult sample, handed to the anchor as a pickle: both venvs
have the same scikit-learn) scores the same rows: the Adult sample of examples/data/adult resampled with a
seed to `--rows`. loopml's side is the whole `client.gates.check` on the embedded store: load the verified
package, predict, metrics, fairness on `sex` and `race`, store the evaluation and the gate result. The
anchor's is `mlflow.evaluate(model_uri, data, targets="income", model_type="classifier")` with its default
evaluator, in .venv-anchors. Prints both medians, the ratio, and the largest metric difference (target:
< 1 s, >= 5x, metrics equal to 1e-9). Exit 1 if the metrics differ.
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from benchmarks._common import run_anchor
from sklearn.linear_model import LogisticRegression

import loopml as lm

ROOT = Path(__file__).parents[1]
ADULT = ROOT / "examples" / "data" / "adult" / "adult_sample.csv"
ANCHOR_PYTHON = ROOT / ".venv-anchors" / "bin" / "python"
FEATURES = ["age", "education_num", "hours_per_week", "capital_gain", "capital_loss"]
POLICY = """\
metrics:
  - accuracy >= 0.7
  - roc_auc >= 0.7
  - log_loss <= 0.6
fairness:
  sex:
    - demographic_parity_ratio >= 0.1
    - equalized_odds_difference <= 0.5
  race:
    - demographic_parity_ratio >= 0.05
"""
SAME = {  # loopml's name -> mlflow's
    "accuracy": "accuracy_score",
    "precision": "precision_score",
    "recall": "recall_score",
    "f1": "f1_score",
    "roc_auc": "roc_auc",
    "log_loss": "log_loss",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--anchor-reps", type=int, default=1)
    args = parser.parse_args()
    sample = pd.read_csv(ADULT)
    rows = sample.sample(n=args.rows, replace=True, random_state=12).reset_index(drop=True)
    model = LogisticRegression(max_iter=1000).fit(sample[FEATURES], sample["income"])
    workdir = Path(tempfile.mkdtemp(prefix="gate-bench-"))
    try:
        (workdir / "model.pkl").write_bytes(pickle.dumps(model))
        rows.to_parquet(workdir / "rows.parquet")
        client = lm.Client(home=workdir / "loopml")
        run = client.runs.create("gate-benchmark")
        version = client.models.log(run.id, model, "income", input_example=sample[FEATURES][:5], register=True)
        uri = f"models:/income/{version.version}"  # type: ignore[union-attr]
        client.models.load(uri)  # the package is fetched and verified once, as a CI job's cache would hold it
        ours, result = [], None
        for _ in range(args.reps):
            started = time.perf_counter()
            result = client.gates.check(uri, POLICY, data=rows, label="income")
            ours.append(time.perf_counter() - started)
        assert result is not None
        evaluation = client.evaluations.get(result.evaluation_id or "")
        client.close()
        anchor = run_anchor(
            ANCHOR_PYTHON, ROOT / "benchmarks" / "anchors" / "mlflow_evaluate.py",
            str(workdir / "model.pkl"), str(workdir / "rows.parquet"), str(workdir), str(args.anchor_reps),
        )  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    differences = {m: abs(evaluation.metrics[m] - anchor["metrics"][theirs]) for m, theirs in SAME.items()}
    loopml_s, mlflow_s = statistics.median(ours), statistics.median(anchor["seconds"])
    print(
        f"gate on {args.rows:,} rows, fairness over sex and race ({len(result.checks)} checks, passed={result.passed})"
    )
    print(f"  loopml client.gates.check   median {loopml_s:.3f} s  (runs: {', '.join(f'{s:.3f}' for s in ours)})")
    anchor_runs = ", ".join(f"{s:.3f}" for s in anchor["seconds"])
    print(f"  mlflow.evaluate {anchor['mlflow']:<10} median {mlflow_s:.3f} s  (runs: {anchor_runs})")
    print(f"  ratio {mlflow_s / loopml_s:.1f}x   target: loopml < 1 s and >= 5x")
    print(f"  largest metric difference {max(differences.values()):.2e} ({', '.join(SAME)}); target <= 1e-9")
    print(json.dumps({"loopml_seconds": ours, "mlflow_seconds": anchor["seconds"], "differences": differences}))
    return 0 if max(differences.values()) <= 1e-9 and np.isfinite(max(differences.values())) else 1


if __name__ == "__main__":
    sys.exit(main())
