from __future__ import annotations

import sqlite3
import uuid

import orjson
import pytest

from .conftest import Cli, Runs


def test_audit_verify_intact_then_tampered(cli: Cli, runs: Runs) -> None:
    intact = cli("audit", "verify")
    assert intact.exit_code == 0, intact.output
    events = orjson.loads(cli("audit", "list", "--limit", "1000", "--json").stdout)
    assert f"audit log intact: {len(events)} events" in intact.stdout

    with sqlite3.connect(cli.home / "loopml.db") as conn:
        conn.execute("UPDATE audit_log SET actor='mallory' WHERE seq=2")
    broken = cli("audit", "verify")
    assert broken.exit_code == 1
    assert "row 2" in broken.stderr
    assert "intact" not in broken.stdout


def test_audit_list_pages_with_after_seq(cli: Cli, runs: Runs) -> None:
    first = orjson.loads(cli("audit", "list", "--limit", "2", "--json").stdout)
    assert [e["seq"] for e in first] == [1, 2]
    rest = orjson.loads(cli("audit", "list", "--after-seq", "2", "--limit", "2", "--json").stdout)
    assert [e["seq"] for e in rest] == [3, 4]
    assert rest[0]["prev_hash"] == first[1]["hash"]

    human = cli("audit", "list", "--limit", "3")
    assert human.exit_code == 0
    assert "run.create" in human.stdout or "experiment.create" in human.stdout


def test_audit_verify_fails_on_a_wiped_log(cli: Cli, runs: Runs) -> None:
    with sqlite3.connect(cli.home / "loopml.db") as conn:
        conn.execute("DELETE FROM audit_log")
        conn.execute("DELETE FROM audit_head")

    wiped = cli("audit", "verify")

    assert wiped.exit_code == 1
    assert "the audit log is empty" in wiped.stderr
    assert f"run.create): {min(runs.good, runs.bad)}" in wiped.stderr.replace("\n", "")
    assert "intact" not in wiped.stdout


def test_audit_verify_fails_on_a_new_store(cli: Cli) -> None:
    empty = cli("audit", "verify")

    assert empty.exit_code == 1
    assert "the audit log is empty" in empty.stderr


def test_audit_verify_on_a_store_without_the_table_is_an_error_not_a_traceback(cli: Cli, runs: Runs) -> None:
    with sqlite3.connect(cli.home / "loopml.db") as conn:
        conn.execute("DROP TABLE audit_log")

    missing = cli("audit", "verify")

    assert missing.exit_code == 1
    assert "error:" in missing.stderr
    assert "has no table audit_log" in missing.stderr
    assert "loopml db upgrade" in missing.stderr.replace("\n", " ")
    assert missing.exception is None or isinstance(missing.exception, SystemExit)


def test_audit_verify_on_a_database_that_does_not_exist_is_an_error_not_a_traceback(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql+psycopg://postgres:sekret@127.0.0.1:5432/loopml_no_such_db_{uuid.uuid4().hex}"
    monkeypatch.setenv("LOOPML_DATABASE_URL", url)

    wrong = cli("audit", "verify")

    assert wrong.exit_code == 1
    assert "error: cannot open the metadata store" in wrong.stderr
    assert "LOOPML_DATABASE_URL" in wrong.stderr
    assert "sekret" not in wrong.stderr
    assert "Traceback" not in wrong.output
