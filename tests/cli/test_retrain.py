"""`loopml retrain create|list|show|runs|approve|reject|delete` on an embedded store under tmp_path."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest

import loopml
from loopml.store import MetadataStore

from .conftest import Cli

FLOW = """
import pandas as pd
from sklearn.linear_model import LinearRegression

import loopml as lm


@lm.step(cache=False)
def train(trigger: dict | None = None) -> lm.Model:
    x = pd.DataFrame({"temp": [float(i) for i in range(10)]})
    return lm.Model(LinearRegression().fit(x, 2 * x["temp"]), name="bike", input_example=x.head(2), register="bike")


@lm.pipeline
def retrain(trigger: dict | None = None):
    return train(trigger=trigger)
"""


@pytest.fixture
def world(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bike_flow.py").write_text(FLOW)
    client = loopml.Client(home=cli.home)
    try:
        client.pipelines.run("bike_flow.py:retrain", executor="inline")
        client.models.set_alias("bike", "champion", 1)
        client.deployments.deploy("bike", "bike@champion")
        client.monitors.create("bike", "bike", "1h")
    finally:
        client.close()
    (tmp_path / "gate.yaml").write_text("metrics:\n  - rmse <= champion * 1.02\n")
    return tmp_path


def _waiting_loop(cli: Cli, at: int) -> str:
    store = MetadataStore.open(f"sqlite:///{cli.home / 'loopml.db'}")
    try:
        with store.write("test") as unit:
            loop = unit.retrain.claim(unit.retrain.policy("bike"), uuid.uuid4().hex, f"drift:{at}", "drift:3", {}, at)
            assert loop is not None
            unit.retrain.transition(loop, "awaiting_approval", {"approval": "manual"}, at=at + 1500)
            return loop.id
    finally:
        store.close()


def test_create_show_runs_approve_reject_delete(cli: Cli, world: Path) -> None:
    made = cli(
        "retrain", "create", "bike", "--monitor", "bike", "--pipeline", "bike_flow.py:retrain", "--on", "drift:3",
        "--on", "metric-drop:10%", "--on", "schedule:0 3 * * 1", "--gate", "gate.yaml", "--label", "cnt",
        "--cooldown", "1d", "--max-per-week", "2", "--approval", "manual", "--json",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    policy = orjson.loads(made.stdout)
    assert policy["pipeline"] == f"{world / 'bike_flow.py'}:retrain"  # made absolute: the server reads it
    assert (policy["max_loops"], policy["period_seconds"], policy["approval"]) == (2, 604_800, "manual")
    listed = cli("retrain", "list")
    assert listed.exit_code == 0 and "drift:3, metric-drop:10%, schedule:0 3 * * 1" in listed.output
    assert "manual" in cli("retrain", "show", "bike").output
    first = _waiting_loop(cli, 1_000)
    timeline = cli("retrain", "runs", "bike")
    assert timeline.exit_code == 0, timeline.output
    assert "triggered" in timeline.output and "awaiting_approval" in timeline.output and "1.5" in timeline.output
    approved = cli("retrain", "approve", first, "--reason", "reviewed the gate")
    assert approved.exit_code == 0 and "rolling_out" in approved.output
    again = cli("retrain", "reject", first)
    assert again.exit_code != 0 and "not awaiting_approval" in again.output
    assert cli("retrain", "show", first, "--json").exit_code == 0
    assert cli("retrain", "delete", "bike").exit_code == 0
    assert orjson.loads(cli("retrain", "runs", "--json").stdout)[0]["state"] == "failed"  # deleting ended it


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--on", "drift:x"], "consecutive windows"),
        (["--on", "drift:3", "--monitor", "nope"], "monitor 'nope' does not exist"),
        (["--on", "drift:3", "--gate", "missing.yaml"], "does not exist"),
        (["--on", "drift:3", "--canary-steps", "10,fifty"], "comma-separated percentages"),
        (["--on", "drift:3", "--max-per-week", "2", "--max-per-day", "1"], "not both"),
    ],
)
def test_bad_input_exits_non_zero_with_the_fix(cli: Cli, world: Path, args: list[str], message: str) -> None:
    base = ["retrain", "create", "bike", "--pipeline", "bike_flow.py:retrain"]
    if "--monitor" not in args:
        base += ["--monitor", "bike"]
    done = cli(*base, *args)
    assert done.exit_code != 0
    assert message in done.output
