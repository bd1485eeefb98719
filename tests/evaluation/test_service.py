"""The services in one process, as the retraining loop inside `loopml server` uses them: packages loaded from
the stores (verified), evaluation against the champion, a gate with measurements taken on the same rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import loopml as lm
from loopml.domain import Principal, Role
from loopml.errors import InvalidInput
from loopml.evaluation import EvaluationService, StoreModelSource
from loopml.gates import GateService

BIKE = Path(__file__).parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"
LOOP = Principal("loopml:retraining", Role.EDITOR, None)


def test_in_process_evaluation_and_gate_from_the_stores(tmp_path: Path) -> None:
    hours = pd.read_csv(BIKE, usecols=["temp", "hr", "season", "cnt"]).iloc[::10].reset_index(drop=True)
    hours.to_parquet(tmp_path / "rows.parquet")
    with lm.Client(home=tmp_path / "home") as client:
        for rows in (30, len(hours)):
            run = client.runs.create("bike")
            model = LinearRegression().fit(hours[["temp", "hr"]][:rows], hours["cnt"][:rows])
            client.models.log(run.id, model, "bike", input_example=hours[["temp", "hr"]][:5], register=True)
        client.models.set_alias("bike", "champion", 1)
        store, artifacts = client.backend.store, client.backend.artifacts  # type: ignore[attr-defined]
        models = StoreModelSource(store, artifacts, tmp_path / "cache")
        evaluations = EvaluationService(store, client.backend.registry, models)  # type: ignore[attr-defined]
        gates = GateService(store, evaluations)

        evaluation = evaluations.evaluate(
            LOOP, "models:/bike/2", tmp_path / "rows.parquet", "cnt", baseline="@champion"
        )
        assert evaluation.baseline_version == 1 and evaluation.dataset_source.endswith("rows.parquet")
        assert evaluations.latest(LOOP, "bike", 2) == evaluation
        assert models(client.models.resolve("models:/bike/2")) is models(client.models.resolve("models:/bike/2"))

        policy = "metrics:\n  - rmse <= champion\nfairness:\n  season:\n    - group_error_ratio <= 5\n"
        result = gates.check(LOOP, "models:/bike/2", policy, data=hours, label="cnt")
        assert result.passed, result.checks
        assert result.created_by == "loopml:retraining"
        assert client.evaluations.get(result.evaluation_id or "").rows == len(hours)

        with pytest.raises(InvalidInput, match="no such file"):
            evaluations.evaluate(LOOP, "models:/bike/2", tmp_path / "missing.csv", "cnt")
        digest = client.runs.log_dataset(run.id, tmp_path / "rows.parquet", "rows").digest
        by_digest = evaluations.evaluate(LOOP, "models:/bike/2", f"dataset:{digest}", "cnt")
        assert by_digest.dataset_digest == evaluation.dataset_digest
