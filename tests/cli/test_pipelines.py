"""`loopml pipeline run|runs|show|logs|retry|lineage` on a store under tmp_path (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from .conftest import Cli

FLOW = """
from pathlib import Path

import loopml as lm


@lm.step
def count(n: int) -> list[int]:
    print(f"counting to {n}")
    return list(range(n))


@lm.step
def guarded(values: list[int], flag: str) -> int:
    if Path(flag).exists():
        raise ValueError("the flag file is there")
    return sum(values)


@lm.pipeline
def counting(n: int, flag: str):
    return guarded(count(n), flag)
"""


@pytest.fixture
def flow(cli: Cli, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOOPML_DATABASE_URL", db_url)
    path = tmp_path / "counting.py"
    path.write_text(FLOW)
    return path


def test_run_show_logs_and_retry_a_failed_pipeline(cli: Cli, flow: Path, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.touch()
    failed = cli("pipeline", "run", f"{flow}:counting", "-p", "n=4", "--param", f"flag={flag}", "--json")
    assert failed.exit_code == 1, failed.output
    document = orjson.loads(failed.stdout)
    assert document["status"] == "FAILED"
    assert document["params"] == {"n": 4, "flag": str(flag)}
    steps = {s["step"]: s for s in document["steps"]}
    assert steps["count"]["state"] == "finished"
    assert steps["guarded"]["error"] == "ValueError: the flag file is there"
    run_id = document["run_id"]

    shown = cli("pipeline", "show", run_id)
    assert shown.exit_code == 0, shown.output
    assert "FAILED" in shown.stdout
    assert 'raise ValueError("the flag file is there")' in shown.stdout  # the traceback

    logs = cli("pipeline", "logs", run_id, "count")
    assert (logs.exit_code, logs.stdout) == (0, "counting to 4\n")

    listed = cli("pipeline", "runs", "counting")
    assert listed.exit_code == 0
    assert run_id in listed.stdout
    assert "FAILED" in listed.stdout

    flag.unlink()
    retried = cli("pipeline", "retry", run_id, "--json")
    assert retried.exit_code == 0, retried.output
    again = orjson.loads(retried.stdout)
    assert again["status"] == "FINISHED"
    assert again["retry_of"] == run_id
    assert {s["step"]: s["state"] for s in again["steps"]} == {"count": "cached", "guarded": "finished"}

    human = cli("pipeline", "run", f"{flow}:counting", "-p", "n=4", "-p", f"flag={flag}")
    assert human.exit_code == 0, human.output
    assert "cached" in human.stdout
    assert "FINISHED" in human.stdout
    assert len(orjson.loads(cli("pipeline", "runs", "--json").stdout)) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "n"], "--param takes key=value, got 'n'"),
        (["-p", "n=3", "-p", "flag=x", "--executor", "spark"], "unknown executor 'spark'"),
        (["-p", "flag=x"], "missing a required argument: 'n'"),
    ],
)
def test_bad_input_exits_2_with_the_cause(cli: Cli, flow: Path, args: list[str], message: str) -> None:
    result = cli("pipeline", "run", f"{flow}:counting", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_unknown_runs_and_references_are_clear_errors(cli: Cli, flow: Path) -> None:
    missing = cli("pipeline", "show", "0" * 32)
    assert missing.exit_code == 2
    assert "does not exist" in missing.stderr
    nowhere = cli("pipeline", "run", f"{flow.parent / 'nope.py'}:counting")
    assert nowhere.exit_code == 2
    assert "does not exist" in nowhere.stderr
    lineage = cli("pipeline", "lineage", "not-a-reference")
    assert lineage.exit_code == 2
    assert "cannot read 'not-a-reference' as a lineage subject" in lineage.stderr


def test_submit_runs_in_a_process_of_its_own_and_retry_no_wait(cli: Cli, flow: Path, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.touch()
    args = ("-p", "n=3", "-p", f"flag={flag}", "--executor", "inline")
    failed = cli("pipeline", "submit", f"{flow}:counting", *args, "--wait", "--json")
    assert failed.exit_code == 1, failed.output
    document = orjson.loads(failed.stdout)
    assert document["status"] == "FAILED" and document["trigger"]["kind"] == "submit"
    flag.unlink()
    retried = cli("pipeline", "retry", document["run_id"], "--no-wait", "--json")
    assert retried.exit_code == 0, retried.output
    assert orjson.loads(retried.stdout)["retry_of"] == document["run_id"]
    again = cli("pipeline", "retry", document["run_id"], "--no-wait")
    assert again.exit_code != 0 and "already retried" in again.output
    bad = cli("pipeline", "submit", f"{flow}:absent")
    assert bad.exit_code != 0 and "has no attribute 'absent'" in bad.output
