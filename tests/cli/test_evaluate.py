"""`loopml evaluate` and `loopml gate`: reports, exit codes 0 (pass), 1 (fail), 2 (a wrong policy or call)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sklearn.linear_model import LogisticRegression
from tests.cli.conftest import Cli

import loopml

ADULT = Path(__file__).parents[2] / "examples" / "data" / "adult" / "adult_sample.csv"
FEATURES = ["age", "education_num", "hours_per_week", "capital_gain", "capital_loss"]


def _register(cli: Cli, with_sex: bool) -> None:
    adult = pd.read_csv(ADULT)
    features = [*FEATURES, "is_male"] if with_sex else FEATURES
    adult["is_male"] = (adult["sex"] == "Male").astype("int64")
    client = loopml.Client(home=cli.home)
    try:
        run = client.runs.create("adult")
        model = LogisticRegression(max_iter=500).fit(adult[features], adult["income"])
        client.models.log(run.id, model, "income", input_example=adult[features][:5], register=True)
    finally:
        client.close()


def test_evaluate_then_gate_with_exit_codes(cli: Cli, tmp_path: Path) -> None:
    _register(cli, with_sex=False)
    data = tmp_path / "eval.csv"
    adult = pd.read_csv(ADULT)
    adult.assign(is_male=(adult["sex"] == "Male").astype("int64")).to_csv(data, index=False)

    done = cli("evaluate", "models:/income/1", "--data", str(data), "--label", "income", "--slice", "sex", "--json")
    assert done.exit_code == 0, done.output
    evaluation = json.loads(done.output)
    assert evaluation["task"] == "binary" and evaluation["rows"] == 4000
    assert set(evaluation["slices"]["sex"]) == {"Male", "Female"}

    passing = tmp_path / "pass.yaml"
    passing.write_text("metrics:\n  - accuracy >= 0.7\n  - roc_auc >= 0.7\npackage:\n  max_mb: 10\n")
    done = cli("gate", "models:/income/1", "--policy", str(passing), "--format", "markdown")
    assert done.exit_code == 0, done.output
    assert "### Gate passed: `income` version 1" in done.output

    strict = tmp_path / "fair.yaml"
    strict.write_text("fairness:\n  sex:\n    - demographic_parity_ratio >= 0.8\n")
    report = tmp_path / "gate.md"
    done = cli(
        "gate", "models:/income/1", "--policy", str(strict), "--data", str(data), "--label", "income",
        "--format", "json", "--report", str(report),
    )  # fmt: skip
    assert done.exit_code == 1, done.output
    result = json.loads(done.output)
    assert result["passed"] is False
    assert result["checks"][0]["name"] == "sex: demographic_parity_ratio >= 0.8"
    assert result["checks"][0]["observed"] < 0.8
    assert "FAIL" in report.read_text()

    bad = tmp_path / "bad.yaml"
    bad.write_text("metrics:\n  - accuracy >= 0.7\n  - recal >= 0.5\n")
    done = cli("gate", "models:/income/1", "--policy", str(bad))
    assert done.exit_code == 2
    assert "line 3: unknown metric 'recal'" in done.output

    done = cli("models", "show", "income")
    assert done.exit_code == 0, done.output
    assert "evaluations" in done.output and "gate results" in done.output and "failed" in done.output


def test_a_guarded_alias_refuses_a_failed_version(cli: Cli, tmp_path: Path) -> None:
    _register(cli, with_sex=True)
    assert cli("models", "require-gate", "income", "champion").exit_code == 0
    done = cli("models", "alias", "income", "champion", "1")
    assert done.exit_code == 1
    assert "requires a passed gate and version 1 has no gate result" in done.output
    done = cli("models", "alias", "income", "champion", "1", "--override-reason", "first model, gate to follow")
    assert done.exit_code == 0, done.output
