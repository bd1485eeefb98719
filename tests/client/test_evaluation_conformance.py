"""Evaluations and gates over both backends: scored in the client, recorded and judged by the service."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

import loopml
from loopml.errors import GateRequired, InvalidInput, InvalidPolicy, PermissionDenied

BIKE = Path(__file__).parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"
FEATURES = ["temp", "hum", "hr", "season"]


@pytest.fixture(scope="module")
def hours() -> pd.DataFrame:
    return pd.read_csv(BIKE, usecols=[*FEATURES, "cnt"]).iloc[::8].reset_index(drop=True)


def _register(client: loopml.Client, hours: pd.DataFrame, rows: int) -> int:
    run = client.runs.create("evaluation")
    model = LinearRegression().fit(hours[FEATURES][:rows], hours["cnt"][:rows])
    version = client.models.log(run.id, model, "bike", input_example=hours[FEATURES][:5], register=True)
    return version.version  # type: ignore[union-attr]


@pytest.mark.operations("record_evaluation", "list_evaluations", "get_evaluation")
def test_evaluate_against_the_champion_on_the_same_rows(client: loopml.Client, hours: pd.DataFrame) -> None:
    first = _register(client, hours, 100)
    second = _register(client, hours, len(hours))
    client.models.set_alias("bike", "champion", first)
    evaluation = client.evaluations.evaluate(
        f"models:/bike/{second}", hours, "cnt", baseline="@champion", slices=["season"], resamples=30
    )
    model = client.models.load(f"models:/bike/{second}")
    predicted = model.predict(hours[FEATURES])
    assert evaluation.task == "regression" and evaluation.rows == len(hours)
    assert evaluation.metrics["rmse"] == pytest.approx(root_mean_squared_error(hours["cnt"], predicted), rel=1e-12)
    assert evaluation.metrics["mae"] == pytest.approx(mean_absolute_error(hours["cnt"], predicted), rel=1e-12)
    assert evaluation.metrics["r2"] == pytest.approx(r2_score(hours["cnt"], predicted), rel=1e-12)
    assert sorted(evaluation.slices["season"]) == ["1", "2", "3", "4"]
    assert sum(group["rows"] for group in evaluation.slices["season"].values()) == len(hours)
    rmse = next(c for c in evaluation.comparison if c.metric == "rmse")
    assert evaluation.baseline_version == first
    assert rmse.difference == pytest.approx(rmse.value - rmse.baseline)
    assert rmse.low <= rmse.difference <= rmse.high
    assert rmse.high < 0  # the model trained on every row beats the one trained on 100, on these rows
    assert client.evaluations.get(evaluation.id) == evaluation
    assert [e.id for e in client.evaluations.list("bike", version=second)] == [evaluation.id]
    assert client.evaluations.list("bike", version=first) == []


@pytest.mark.operations("record_evaluation")
def test_a_malformed_evaluation_is_refused(client: loopml.Client, hours: pd.DataFrame) -> None:
    version = _register(client, hours, 200)
    scored = client.evaluations.score(f"models:/bike/{version}", hours, "cnt", resamples=0)
    with pytest.raises(InvalidInput, match="label column 'nope'"):
        client.evaluations.score(f"models:/bike/{version}", hours, "nope")
    fields = dict(scored.fields)
    fields.update(metrics={"rmse": "fast"}, comparison=None, slices=None)
    with pytest.raises(InvalidInput):
        client.backend.call(loopml.api.evaluation.RECORD_EVALUATION, **fields)  # type: ignore[attr-defined]


POLICY = """\
metrics:
  - rmse <= 1000
  - rmse <= champion * 1.02
fairness:
  season:
    - group_error_ratio <= 10
latency:
  p99_ms: 2000
  rows: 20
package:
  max_mb: 50
"""


@pytest.mark.operations(
    "check_gate", "list_gate_results", "get_gate_result", "require_gate", "gate_requirements", "set_model_alias"
)
def test_a_guarded_alias_moves_only_to_a_version_that_passed(client: loopml.Client, hours: pd.DataFrame) -> None:
    good = _register(client, hours, len(hours))
    bad = _register(client, hours, 30)
    client.models.set_alias("bike", "champion", good)
    assert client.gates.require("bike", "champion") == ["champion"]
    assert client.gates.requirements("bike") == ["champion"]

    failed = client.gates.check(f"models:/bike/{bad}", POLICY, data=hours, label="cnt")
    assert not failed.passed
    by_name = {c.name: c for c in failed.checks}
    assert by_name["rmse <= champion * 1.02"].status == "fail"
    assert by_name["rmse <= champion * 1.02"].line == 3
    assert {c.kind for c in failed.checks} == {"metric", "champion", "fairness", "latency", "package"}
    with pytest.raises(GateRequired, match="requires a passed gate"):
        client.models.set_alias("bike", "champion", bad)
    assert client.models.get_alias("bike", "champion").version == good

    passed = client.gates.check(f"models:/bike/{good}", POLICY, data=hours, label="cnt")
    assert passed.passed, [c for c in passed.checks if c.status != "pass"]
    assert client.gates.get(passed.id) == passed
    assert [r.id for r in client.gates.list("bike")] == [passed.id, failed.id]
    assert client.models.set_alias("bike", "champion", good).version == good

    # an admin (the embedded client, the conformance admin token) may override, with a reason that is audited
    assert client.models.set_alias("bike", "champion", bad, override_reason="incident 42").version == bad
    overrides = [e for e in client.audit.events() if e.action == "model.gate_override"]
    assert overrides[-1].after == {
        "alias": "champion", "version": bad, "reason": "incident 42", "gate": f"failed its newest gate ({failed.id})"
    }  # fmt: skip


@pytest.mark.operations("check_gate")
def test_hostile_policies_name_their_line(client: loopml.Client, hours: pd.DataFrame) -> None:
    version = _register(client, hours, 200)
    uri = f"models:/bike/{version}"
    cases = {
        "metrics:\n  - accuracyy >= 0.9\n": "line 2: unknown metric 'accuracyy'",
        "metrics:\n  - rmse <= 110\n  - rmse <= lots\n": "line 3: the threshold of 'rmse <= lots' must be a number",
        "metrics: [rmse <= 1\n": "line 2: not valid YAML",
        "latency:\n  p99_ms: fast\n": "line 2: latency.p99_ms must be a number",
        "package:\n  max_mb: 1\nbogus: 2\n": "line 3: unknown field 'bogus'",
    }
    for policy, message in cases.items():
        with pytest.raises(InvalidPolicy, match=message):
            client.gates.check(uri, policy)
        with pytest.raises(InvalidPolicy, match=message):  # the server refuses it too, whatever the client sent
            client.backend.call(loopml.api.evaluation.CHECK_GATE, name="bike", version=version, policy=policy)  # type: ignore[attr-defined]
    with pytest.raises(InvalidPolicy, match="line 2: model 'bike' has no alias 'champion'"):
        client.gates.check(uri, "metrics:\n  - rmse <= champion * 1.1\n", data=hours, label="cnt")
    with pytest.raises(InvalidPolicy, match="line 2: model 'bike' has no alias 'champion'"):
        client.backend.call(
            loopml.api.evaluation.CHECK_GATE, name="bike", version=version, policy="metrics:\n  - rmse <= champion\n"
        )  # type: ignore[attr-defined]


def test_dropping_a_requirement_takes_an_admin(tmp_path: Path) -> None:
    from loopml.domain import Principal, Role
    from loopml.evaluation import EvaluationService
    from loopml.gates import GateService
    from loopml.registry import RegistryService
    from loopml.store import MetadataStore

    store = MetadataStore.open(f"sqlite:///{tmp_path / 'l.db'}")
    registry = RegistryService(store)
    admin = Principal("ann", Role.ADMIN, None)
    registry.create_model(admin, "m")
    gates = GateService(store, EvaluationService(store, registry))
    editor = Principal("ed", Role.EDITOR, None)
    assert gates.require_gate(editor, "m", "champion") == ["champion"]
    with pytest.raises(PermissionDenied):
        gates.require_gate(editor, "m", "champion", required=False)
    assert gates.require_gate(admin, "m", "champion", required=False) == []
    store.close()
