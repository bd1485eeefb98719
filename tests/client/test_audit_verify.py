"""`client.audit.verify()` on both backends: an emptied log is reported, a missing table is an error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import loopml
from loopml.errors import StoreUnavailable


def test_a_wiped_log_is_reported(client: loopml.Client, tmp_path: Path) -> None:
    run = client.runs.create("audited")
    assert client.audit.verify() == []
    with sqlite3.connect(tmp_path / "loopml.db") as conn:
        conn.execute("DELETE FROM audit_log")
        conn.execute("DELETE FROM audit_head")

    problems = client.audit.verify()

    assert any("the audit log is empty" in p for p in problems)
    assert any("run.create" in p and run.id in p for p in problems)


def test_a_missing_audit_table_raises_store_unavailable(client: loopml.Client, tmp_path: Path) -> None:
    client.runs.create("audited")
    with sqlite3.connect(tmp_path / "loopml.db") as conn:
        conn.execute("DROP TABLE audit_log")

    with pytest.raises(StoreUnavailable, match="has no table audit_log"):
        client.audit.verify()
