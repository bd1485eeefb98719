"""`GET /audit/verify` checks the chain against what the store holds, and names a missing table."""

from __future__ import annotations

from sqlalchemy import delete, text

from loopml.store.schema import audit_head, audit_log

from .support import API, Api


def test_verify_reports_a_wiped_log_and_the_entities_it_no_longer_covers(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    with api.store.engine.begin() as conn:
        conn.execute(delete(audit_log))
        conn.execute(delete(audit_head))

    response = api.client.get(f"{API}/audit/verify", headers=api.headers())

    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert any("the audit log is empty" in p for p in body["problems"])
    assert any("run.create" in p and run_id in p for p in body["problems"])
    assert any("token.create" in p for p in body["problems"])  # the admin token the server minted


def test_verify_on_a_store_without_the_audit_table_names_it(api: Api) -> None:
    with api.store.engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_log"))

    response = api.client.get(f"{API}/audit/verify", headers=api.headers())

    assert response.status_code == 503  # the server's store is broken, not the request
    error = response.json()["error"]
    assert error["code"] == "store_unavailable"
    assert "has no table audit_log" in error["message"]
    assert "loopml db upgrade" in error["message"]
