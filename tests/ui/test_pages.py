"""The UI's pages in-process (ASGI): sessions, CSRF, roles, escaping, artifacts, malformed input."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loopml.ui import install_ui
from server.support import ADMIN_SECRET, API, make_app

XSS = ["<script>window.__xss=1</script>", "<img src=x onerror=window.__xss=1>"]


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[TestClient]:
    app, store = make_app(f"sqlite:///{tmp_path / 'ui.db'}", tmp_path / "artifacts")
    with TestClient(install_ui(app), follow_redirects=False) as client:
        yield client
    store.close()


def login(client: TestClient, secret: str = ADMIN_SECRET) -> str:
    """Log `client` in; the CSRF token of its session."""
    answer = client.post("/login", data={"token": secret, "next": "/experiments"})
    assert answer.status_code == 303, answer.text
    page = client.get("/experiments")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def api(client: TestClient, method: str, path: str, secret: str = ADMIN_SECRET, **kwargs: object) -> dict:  # type: ignore[type-arg]
    answer = client.request(method, f"{API}{path}", headers={"Authorization": f"Bearer {secret}"}, **kwargs)  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def seed(client: TestClient) -> tuple[int, str]:
    experiment = api(client, "POST", "/experiments", json={"name": XSS[0]})["experiment"]["id"]
    run = api(
        client,
        "POST",
        "/runs",
        json={"experiment_id": experiment, "name": XSS[1], "params": {"p": XSS[0]}, "tags": {"t": XSS[1]}},
    )["run"]["id"]
    batch = {"keys": ["loss"], "values": [0.5], "steps": [1], "timestamps": [1]}
    api(client, "POST", f"/runs/{run}/metrics", json=batch)
    return experiment, run


def test_no_session_redirects_every_page_and_action(ui: TestClient) -> None:
    experiment, run = seed(ui)
    for path in (f"/experiments/{experiment}", f"/runs/{run}", f"/compare?run={run}", f"/runs/{run}/artifact?path=a"):
        answer = ui.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?next=")
    assert ui.post(f"/runs/{run}/tags", data={"key": "a", "value": "b"}).headers["location"] == "/login"
    data = ui.get(f"/ui/data/metric-history?key=loss&run={run}")
    assert data.status_code == 401
    assert data.json()["error"]["code"] == "unauthenticated"


def test_user_text_is_shown_as_text_never_markup(ui: TestClient) -> None:
    experiment, run = seed(ui)
    login(ui)
    table = f"/experiments/{experiment}?col=params.p&col=tags.t"
    for path in (table, f"/runs/{run}", f"/compare?run={run}", "/experiments"):
        page = ui.get(path)
        assert page.status_code == 200, page.text
        for payload in XSS:
            assert payload not in page.text, path
        assert "&lt;script&gt;" in page.text or "&lt;img" in page.text, path
        assert "script-src 'self'" in page.headers["content-security-policy"]
    compare = ui.get(f"/compare?run={run}").text
    scatter = re.search(r'<script type="application/json" id="scatter-data">(.*?)</script>', compare)
    assert scatter is not None
    assert "<" not in scatter.group(1)  # JSON for the charts escapes < so it cannot close its script element


def test_actions_need_the_sessions_csrf_token(ui: TestClient) -> None:
    _, run = seed(ui)
    csrf = login(ui)
    assert ui.post(f"/runs/{run}/tags", data={"key": "stage", "value": "x"}).status_code == 403
    assert ui.post(f"/runs/{run}/tags", data={"key": "stage", "value": "x", "csrf_token": "forged"}).status_code == 403
    done = ui.post(f"/runs/{run}/tags", data={"key": "stage", "value": "reviewed", "csrf_token": csrf})
    assert done.status_code == 303
    assert api(ui, "GET", f"/runs/{run}")["run"]["tags"]["stage"] == "reviewed"


def test_a_viewer_is_not_offered_actions_and_a_forged_one_is_refused(ui: TestClient) -> None:
    _, run = seed(ui)
    secret = api(ui, "POST", "/tokens", json={"name": "reader", "role": "viewer"})["secret"]
    csrf = login(ui, secret)
    page = ui.get(f"/runs/{run}")
    assert page.status_code == 200
    assert "Set tag" not in page.text
    forged = ui.post(f"/runs/{run}/tags", data={"key": "stage", "value": "x", "csrf_token": csrf})
    assert forged.status_code == 403
    assert "editor role" in forged.text
    assert "stage" not in api(ui, "GET", f"/runs/{run}")["run"]["tags"]


def test_a_revoked_token_is_logged_out_at_its_next_request(ui: TestClient) -> None:
    minted = api(ui, "POST", "/tokens", json={"name": "leaving", "role": "viewer"})
    login(ui, minted["secret"])
    assert ui.get("/experiments").status_code == 200
    ui.delete(f"{API}/tokens/{minted['token']['id']}", headers={"Authorization": f"Bearer {ADMIN_SECRET}"})
    assert ui.get("/experiments").status_code == 303


def test_login_refuses_unknown_tokens_and_foreign_redirects(ui: TestClient) -> None:
    assert ui.post("/login", data={"token": "lml_nope"}).status_code == 401
    assert ui.post("/login", data={"token": ""}).status_code == 400
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        answer = ui.post("/login", data={"token": ADMIN_SECRET, "next": target})
        assert answer.headers["location"] == "/experiments", target
    cookie = ui.post("/login", data={"token": ADMIN_SECRET}).headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    tampered = TestClient(ui.app, follow_redirects=False, cookies={"loopml_session": "bG1sX3Rlc3RfYWRtaW4.AAAA"})
    assert tampered.get("/experiments").status_code == 303


def test_malformed_input_gets_a_4xx_that_says_what_to_fix(ui: TestClient) -> None:
    experiment, run = seed(ui)
    login(ui)
    bad_filter = ui.get(f"/experiments/{experiment}", params={"filter": "metrics.loss <<< 1"})
    assert bad_filter.status_code == 400
    assert "filter" in bad_filter.text
    assert ui.get(f"/experiments/{experiment}", params={"per_page": "0"}).status_code == 400
    assert ui.get("/experiments/999999").status_code == 404
    assert ui.get("/runs/not-a-run").status_code == 404
    assert ui.get("/compare").status_code == 400
    many = ui.get("/ui/data/metric-history", params={"key": "loss", "run": [f"{i:032x}" for i in range(101)]})
    assert many.status_code == 400
    assert "at most 100 runs" in many.json()["error"]["message"]
    assert ui.get("/ui/data/metric-history", params={"key": "", "run": run}).status_code == 400
    assert ui.get(f"/runs/{run}/artifact", params={"path": "../etc/passwd"}).status_code in (400, 404)
    assert ui.get("/static/../app.py").status_code == 404


def test_metric_history_is_downsampled_for_the_chart(ui: TestClient) -> None:
    experiment = api(ui, "POST", "/experiments", json={"name": "long"})["experiment"]["id"]
    run = api(ui, "POST", "/runs", json={"experiment_id": experiment, "name": "r"})["run"]["id"]
    values = [float(i % 100) for i in range(5000)]
    values[2345] = 1e6  # a spike must survive downsampling
    batch = {"keys": ["loss"] * 5000, "values": values, "steps": list(range(5000)), "timestamps": [1] * 5000}
    api(ui, "POST", f"/runs/{run}/metrics", json=batch)
    login(ui)
    data = ui.get("/ui/data/metric-history", params={"key": "loss", "run": run, "points": 100}).json()
    series = data["runs"][0]
    assert series["total"] == 5000
    assert len(series["steps"]) <= 200
    assert 1e6 in series["values"]
    assert series["steps"] == sorted(series["steps"])
    zoomed = ui.get("/ui/data/metric-history", params={"key": "loss", "run": run, "lo": 100, "hi": 149}).json()
    assert zoomed["runs"][0]["steps"] == list(range(100, 150))


def test_artifacts_are_previewed_and_never_served_as_html(ui: TestClient, tmp_path: Path) -> None:
    _, run = seed(ui)
    headers = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    files = {
        "data/table.csv": b"a,b\n1,<b>2</b>\n",
        "notes/page.html": b"<script>window.__xss=1</script>",
        "plot.png": b"\x89PNG\r\n\x1a\n",
    }
    for path, content in files.items():
        assert ui.put(f"{API}/runs/{run}/artifacts/{path}", content=content, headers=headers).status_code == 200
    login(ui)
    listing = ui.get(f"/runs/{run}").text
    assert "data/" in listing and "plot.png" in listing
    inside = ui.get(f"/runs/{run}", params={"dir": "data"}).text
    assert "table.csv" in inside
    table = ui.get(f"/runs/{run}/artifact", params={"path": "data/table.csv"})
    assert "<td>&lt;b&gt;2&lt;/b&gt;</td>" in table.text
    html = ui.get(f"/runs/{run}/artifact/raw", params={"path": "notes/page.html"})
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-disposition"].startswith("attachment")
    image = ui.get(f"/runs/{run}/artifact/raw", params={"path": "plot.png"})
    assert image.headers["content-type"] == "image/png"
    assert image.content == files["plot.png"]
    download = ui.get(f"/runs/{run}/artifact/raw", params={"path": "data/table.csv", "download": "1"})
    assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''table.csv"


def test_embedded_mode_needs_no_login(tmp_path: Path) -> None:
    app, store = make_app(f"sqlite:///{tmp_path / 'ui.db'}", tmp_path / "artifacts")
    with TestClient(install_ui(app, embedded=True), follow_redirects=False) as client:
        page = client.get("/experiments")
        assert page.status_code == 200
        assert "local:" in page.text
        assert "Log out" not in page.text
        assert client.post("/logout", data={}).status_code == 403  # actions still need the CSRF token
    store.close()


def test_hostile_forms_are_refused_before_they_fill_memory(ui: TestClient) -> None:
    _, run = seed(ui)
    big = {"token": "x" * (65 * 1024)}
    assert ui.post("/login", data=big).status_code == 413
    csrf = login(ui)
    assert (
        ui.post(f"/runs/{run}/tags", data={"key": "k", "value": "v" * (65 * 1024), "csrf_token": csrf}).status_code
        == 413
    )
    garbled = ui.post(
        f"/runs/{run}/tags", content=b"key=\xff\xfe", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert garbled.status_code == 400
    assert ui.post(f"/runs/{run}/tags", data={"key": "", "csrf_token": csrf}).status_code == 400
