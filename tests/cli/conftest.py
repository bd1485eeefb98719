"""The CLI on an embedded store under tmp_path, with two finished runs in experiment `bike`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

import loopml
from loopml.cli import app


@dataclass
class Cli:
    home: Path
    runner: CliRunner

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args))


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    home = tmp_path / "home"
    monkeypatch.setenv("LOOPML_HOME", str(home))
    for name in (
        "LOOPML_TRACKING_URI",
        "LOOPML_TOKEN",
        "LOOPML_DATABASE_URL",
        "LOOPML_ARTIFACT_ROOT",
        "COLUMNS",
    ):
        monkeypatch.delenv(name, raising=False)
    return Cli(home=home, runner=CliRunner())


@dataclass
class Runs:
    good: str
    bad: str


@pytest.fixture
def runs(cli: Cli, tmp_path: Path) -> Runs:
    model = tmp_path / "model.txt"
    model.write_text("weights")
    client = loopml.Client(home=cli.home)
    try:
        good = client.runs.create("bike", "gbm-1", params={"lr": 0.1, "model": "gbm"}, tags={"team": "ds"})
        client.runs.log_metric(good.id, "rmse", 50.0, step=0)
        client.runs.log_metric(good.id, "rmse", 41.5, step=1)
        client.runs.log_dataset(good.id, pd.DataFrame({"hour": [1, 2, 3]}), "bike-hourly")
        client.runs.log_artifact(good.id, model)
        client.runs.end(good.id)
        bad = client.runs.create("bike", "linear-1", params={"lr": 0.5, "model": "linear"})
        client.runs.log_metric(bad.id, "rmse", 63.0)
        client.runs.end(bad.id, "FAILED")
    finally:
        client.close()
    return Runs(good=good.id, bad=bad.id)
