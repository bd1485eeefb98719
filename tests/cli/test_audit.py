from __future__ import annotations

import sqlite3

import orjson

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
