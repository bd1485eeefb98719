"""Gate policies: every check with its line; anything else refused with the line, never another exception."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression

import loopml as lm
from loopml.api.evaluation import CHECK_GATE
from loopml.errors import GateRequired, InvalidPolicy
from loopml.gates import parse_policy

BIKE = Path(__file__).parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"


def test_a_full_policy_keeps_every_check_and_its_line() -> None:
    policy = parse_policy(
        "champion: best\nmetrics:\n  - rmse <= 110\n  - r2 >= champion - 0.01\n"
        "fairness:\n  sex:\n    - demographic_parity_ratio >= 0.8\n"
        "contract: bike\nsignature: bike\nlatency:\n  p99_ms: 50\npackage:\n  max_mb: 10\n"
    )
    assert policy.champion == "best" and policy.needs_champion and policy.needs_data
    assert [(r.metric, r.op, r.value, r.relative, r.line) for r in policy.metrics] == [
        ("rmse", "<=", 110.0, None, 3),
        ("r2", ">=", 0.01, "-", 4),
    ]
    assert policy.metrics[1].threshold(0.9) == pytest.approx(0.89)
    assert policy.fairness[0][0] == "sex" and policy.fairness[0][1].line == 7
    assert policy.contract == ("bike", 8) and policy.signature == ("bike", 9)
    assert policy.latency == (50.0, 200, 11) and policy.package == (10.0, 13)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: the policy is empty"),
        ("- rmse <= 1\n", "line 1: the policy must be a mapping"),
        ("metrics: rmse <= 1\n", "line 1: metrics must be a list"),
        ("metrics:\n  - rmse <== 1\n", "line 2: the threshold of 'rmse <== 1' must be a number"),
        ("metrics:\n  - rmse\n", "line 2: a metric check 'rmse' is not `metric <op> threshold`"),
        ("fairness:\n  sex:\n    - demographic_parity_ratio >= champion\n", "line 3: fairness checks take absolute"),
        ("latency:\n  rows: 5\n", "line 2: latency needs p99_ms"),
        ("latency:\n  p99_ms: -3\n", "line 2: latency.p99_ms must be a positive finite number"),
        ("package:\n  max_mb: [1]\n", "line 2: package.max_mb must be a single value"),
        ("metrics:\n  - rmse <= 1\nmetrics:\n  - mae <= 1\n", "line 3: 'metrics' is given twice"),
        ("contract: ../etc\n", "line 1: contract must name a deployment"),
        ("champion: 'no spaces'\nmetrics:\n  - rmse <= champion\n", "line 1:"),
        ("metrics:\n  - rmse <= 1e400\n", "line 2: the threshold of 'rmse <= 1e400' must be finite"),
    ],
)
def test_hostile_policies_are_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(InvalidPolicy, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_policy(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_policy_or_an_invalid_policy(text: str) -> None:
    try:
        parse_policy(text)
    except InvalidPolicy as refused:
        if not str(refused).startswith("gate policy"):
            pytest.fail(f"a refusal that does not say where: {refused}")


def test_concurrent_gates_and_alias_moves_never_let_a_failed_version_through(tmp_path: Path) -> None:
    """Threads judge the failing version again and try to move the guarded alias to it and to the passing one,
    all at once: every move to the failing version is refused, and the audit chain stays intact."""
    hours = pd.read_csv(BIKE, usecols=["temp", "hr", "cnt"]).iloc[::10]
    with lm.Client(home=tmp_path / "home") as client:
        for rows in (len(hours), 20):  # version 1 passes, version 2 fails `rmse <= 180`
            run = client.runs.create("m")
            model = LinearRegression().fit(hours[["temp", "hr"]][:rows], hours["cnt"][:rows])
            client.models.log(run.id, model, "m", input_example=hours[["temp", "hr"]][:5], register=True)
        policy = "metrics:\n  - rmse <= 180\n"
        assert client.gates.check("models:/m/1", policy, data=hours, label="cnt").passed
        assert not client.gates.check("models:/m/2", policy, data=hours, label="cnt").passed
        client.gates.require("m", "champion")
        refused: list[Exception] = []
        unexpected: list[Exception] = []

        def move(version: int) -> None:
            try:
                client.models.set_alias("m", "champion", version)
            except GateRequired as error:
                refused.append(error)
            except Exception as error:
                unexpected.append(error)

        def judge() -> None:
            try:
                client.backend.call(CHECK_GATE, name="m", version=2, policy=policy)
            except Exception as error:
                unexpected.append(error)

        threads = [threading.Thread(target=move, args=(1 + i % 2,)) for i in range(12)]
        threads += [threading.Thread(target=judge) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert unexpected == []
        assert len(refused) == 6
        assert client.models.get_alias("m", "champion").version == 1
        assert client.audit.verify() == []
