"""The review pages in-process (ASGI): no session -> login, malformed input -> a 4xx page saying what to fix,
deployment changes refused without CSRF, confirmation or reason, and user text escaped."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loopml.ui import install_ui
from server.support import ADMIN_SECRET, API, make_app

XSS = "<script>window.__xss=1</script>"


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[TestClient]:
    app, store = make_app(f"sqlite:///{tmp_path / 'ui.db'}", tmp_path / "artifacts")
    with TestClient(install_ui(app), follow_redirects=False) as client:
        yield client
    store.close()


def _login(client: TestClient) -> str:
    assert client.post("/login", data={"token": ADMIN_SECRET, "next": "/models"}).status_code == 303
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/models").text)
    assert found is not None
    return found.group(1)


def _model(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    answer = client.post(f"{API}/models", json={"name": "bike", "description": XSS}, headers=headers)
    assert answer.status_code == 200, answer.text


PAGES = ("/models", "/models/bike", "/models/bike/versions/1", "/deployments", "/deployments/d", "/monitors")
PAGES += ("/monitors/m", "/audit", "/pipelines", "/pipelines/runs/r", "/deployments/d/timeline")


def test_every_review_page_and_action_needs_a_session(ui: TestClient) -> None:
    for path in PAGES:
        answer = ui.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next="), path
    refused = ui.post("/deployments/d/promote", data={"confirm": "yes", "reason": "r"})
    assert (refused.status_code, refused.headers["location"]) == (303, "/login")


def test_malformed_or_unknown_input_gets_a_4xx_that_says_what_to_fix(ui: TestClient) -> None:
    _model(ui)
    csrf = _login(ui)
    assert XSS not in ui.get("/models/bike").text  # escaped: &lt;script&gt;
    assert "&lt;script&gt;" in ui.get("/models/bike").text
    assert ui.get("/models/nope").status_code == 404
    assert ui.get("/models/bike/versions/abc").status_code == 400
    assert ui.get("/models/bike/versions/1").status_code == 404
    assert ui.get("/deployments/nope").status_code == 404
    assert ui.get("/monitors/nope").status_code == 404
    assert ui.get("/monitors/nope", params={"window": "soon"}).status_code == 400
    assert ui.get("/audit", params={"before": "0"}).status_code == 400
    assert ui.get("/audit", params={"actor": "x" * 700}).status_code == 400
    assert ui.get("/audit", params={"actor": "  "}).status_code == 200  # blank filters are no filters
    wrong_status = ui.get("/pipelines", params={"status": "DONE"})
    assert wrong_status.status_code == 400 and "status must be one of" in wrong_status.text
    assert ui.get("/pipelines/runs/nope").status_code == 404
    no_csrf = ui.post("/deployments/d/promote", data={"confirm": "yes", "reason": "r"})
    assert no_csrf.status_code == 403
    form = {"csrf_token": csrf, "confirm": "yes", "reason": "looked at it"}
    assert ui.post("/deployments/d/explode", data=form).status_code == 400
    unconfirmed = ui.post("/deployments/d/promote", data={**form, "confirm": ""})
    assert unconfirmed.status_code == 400 and "tick the confirmation" in unconfirmed.text
    no_reason = ui.post("/deployments/d/promote", data={**form, "reason": "  "})
    assert no_reason.status_code == 400 and "say why" in no_reason.text
    assert ui.post("/deployments/d/promote", data=form).status_code == 404  # checked by the service


def _api(client: TestClient, method: str, path: str, **kwargs: object) -> dict:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    answer = client.request(method, f"{API}{path}", headers=headers, **kwargs)  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_an_unparsable_package_is_not_verified_and_a_shadow_shows_its_comparison(ui: TestClient) -> None:
    manifest = b'{"flavor": "sklearn", "files": {}}'  # registered as is, but not a complete manifest
    experiment = _api(ui, "POST", "/experiments", json={"name": "e"})["experiment"]["id"]
    run = _api(ui, "POST", "/runs", json={"experiment_id": experiment})["run"]["id"]
    _api(ui, "PUT", f"/runs/{run}/artifacts/model/loopml-model.json", content=manifest)
    _api(ui, "POST", "/models", json={"name": "bike"})
    body = {"run_id": run, "artifact_path": "model", "manifest_digest": hashlib.sha256(manifest).hexdigest()}
    for _ in range(2):
        _api(ui, "POST", "/models/bike/versions", json={**body, "flavor": "sklearn"})
    _api(ui, "POST", "/deployments", json={"name": "d", "model": "bike/1"})
    _api(ui, "POST", "/deployments", json={"name": "d", "model": "bike/2", "strategy": "shadow"})
    _login(ui)
    version = ui.get("/models/bike/versions/2")
    assert version.status_code == 200
    assert "Not verified" in version.text and "loopml-model.json" in version.text
    assert re.search(r'href="/deployments/d">d</a> <span class="muted">shadow at \d+%', version.text)  # lineage
    page = ui.get("/deployments/d")
    assert page.status_code == 200
    assert "Shadow comparison" in page.text
    assert "live_requests" in page.text and "agreement_rate" in page.text
    assert "Promote bike/2" in page.text  # a shadow can be promoted
