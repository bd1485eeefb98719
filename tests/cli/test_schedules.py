"""`loopml pipeline schedule|schedules|firings|unschedule` on a store under tmp_path (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from .conftest import Cli

FLOW = """
import loopml as lm


@lm.step
def add(x: int, y: int) -> int:
    return x + y


@lm.pipeline(schedule="30 4 * * 1")
def weekly(x: int = 1):
    return add(x, 1)
"""


@pytest.fixture
def flow(cli: Cli, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOOPML_DATABASE_URL", db_url)
    path = tmp_path / "weekly_flow.py"
    path.write_text(FLOW)
    return path


def test_schedule_list_and_unschedule(cli: Cli, flow: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a relative path is stored absolute: the server does not share this directory
    made = cli("pipeline", "schedule", "weekly_flow.py:weekly", "-p", "x=41", "--json")
    assert made.exit_code == 0, made.output
    document = orjson.loads(made.stdout)
    assert document["name"] == "weekly"
    assert document["pipeline"] == f"{flow.resolve()}:weekly"
    assert document["cron"] == "30 4 * * 1"  # the pipeline's own schedule=
    assert document["params"] == {"x": 41}

    on_data = cli("pipeline", "schedule", "on-data", "--pipeline", f"{flow}:weekly", "--dataset", "bike-hourly")
    assert on_data.exit_code == 0, on_data.output
    assert "new versions of dataset 'bike-hourly'" in on_data.stdout

    listed = cli("pipeline", "schedules")
    assert listed.exit_code == 0, listed.output
    assert "weekly" in listed.stdout and "on-data" in listed.stdout and "30 4 * * 1" in listed.stdout
    assert cli("pipeline", "firings", "weekly", "--json").stdout.strip() == "[]"

    removed = cli("pipeline", "unschedule", "weekly")
    assert removed.exit_code == 0, removed.output
    names = [s["name"] for s in orjson.loads(cli("pipeline", "schedules", "--json").stdout)]
    assert names == ["on-data"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nightly", "--cron", "0 2 * * *"], "not a pipeline reference"),
        (["{flow}:weekly", "--cron", "every night"], "invalid cron expression"),
        (["{flow}:missing"], "has no attribute 'missing'"),
        (["{flow}:weekly", "--executor", "kubernetes"], "unknown executor 'kubernetes'"),
    ],
)
def test_bad_input_exits_non_zero_with_the_cause(cli: Cli, flow: Path, args: list[str], message: str) -> None:
    done = cli("pipeline", "schedule", *(a.format(flow=flow) for a in args))
    assert done.exit_code != 0
    assert message in done.output


def test_unscheduling_an_unknown_schedule_says_so(cli: Cli, flow: Path) -> None:
    done = cli("pipeline", "unschedule", "nope")
    assert done.exit_code != 0
    assert "no pipeline schedule named 'nope'" in done.output
