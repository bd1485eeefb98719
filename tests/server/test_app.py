"""Building and starting the server: create_app from settings, OpenAPI, first-start admin token."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path
from typing import Any

import pytest

from loopml.registry import pickle_guard
from loopml.server import create_app, run_server
from loopml.settings import Settings

from .support import API, TestClient


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOOPML_DATABASE_URL", "LOOPML_ARTIFACT_ROOT", "LOOPML_ADMIN_TOKEN", "LOOPML_HOME"):
        monkeypatch.delenv(name, raising=False)
    # create_app forbids pickle for the rest of the process (as the server must); undo it after each test so
    # the ban does not leak into other tests run by the same worker.
    monkeypatch.setattr(pickle_guard, "_forbidden_reason", pickle_guard.pickle_forbidden_reason())


def test_the_api_server_process_refuses_pickle(tmp_path: Path) -> None:
    create_app(Settings(home=tmp_path))
    assert "never loads pickled models" in (pickle_guard.pickle_forbidden_reason() or "")
    with pytest.raises(PermissionError, match="disabled in this process"):
        pickle_guard.check_pickle_allowed(trust_pickle=True)


def test_create_app_from_settings_publishes_openapi_and_docs(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path))
    with TestClient(app) as client:
        spec = client.get(f"{API}/openapi.json").json()
        assert spec["info"] == {"title": "loopml", "version": importlib.metadata.version("loopml")}
        assert f"{API}/runs/{{run_id}}/metrics" in spec["paths"]
        metrics_body = spec["paths"][f"{API}/runs/{{run_id}}/metrics"]["post"]["requestBody"]
        assert set(metrics_body["content"]["application/json"]["schema"]["properties"]) == {
            "keys",
            "values",
            "steps",
            "timestamps",
        }
        assert client.get(f"{API}/docs").status_code == 200
        assert client.get(f"{API}/health").json() == {"status": "ok"}
    app.state.tracking.store.close()


def test_run_server_prints_a_minted_admin_token_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: list[dict[str, Any]] = []

    def fake_run(_app: object, **options: Any) -> None:
        served.append(options)

    monkeypatch.setattr("loopml.server.app.uvicorn.run", fake_run)
    settings = Settings(home=tmp_path / "home")

    run_server(settings)
    first = capsys.readouterr().out
    assert "loopml: first start; admin token (shown once, store it now): lml_" in first
    secret = first.strip().rsplit(" ", 1)[-1]
    assert served == [{"host": "127.0.0.1", "port": 8080, "log_level": "warning"}]

    run_server(settings, host="192.0.2.1", port=9000)
    assert capsys.readouterr().out == ""
    assert served[-1]["host"] == "192.0.2.1"
    assert served[-1]["port"] == 9000

    app = create_app(settings)
    with TestClient(app) as client:
        response = client.get(f"{API}/tokens", headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 200
        assert [t["role"] for t in response.json()["tokens"]] == ["admin"]
    app.state.tracking.store.close()


def test_run_server_registers_the_configured_admin_token_silently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("loopml.server.app.uvicorn.run", lambda *_, **__: None)
    secret = "lml_configured_admin_secret_0123456789"
    settings = Settings(home=tmp_path, admin_token=secret)
    run_server(settings)
    assert capsys.readouterr().out == ""
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.get(f"{API}/tokens", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    app.state.tracking.store.close()


def test_a_starting_server_removes_uploads_cut_off_by_a_crash(tmp_path: Path) -> None:
    tmp = tmp_path / "artifacts" / "tmp"
    tmp.mkdir(parents=True)
    (tmp / "crashed").write_bytes(b"half an upload")
    os.utime(tmp / "crashed", (0, 0))  # written long ago
    (tmp / "in-flight").write_bytes(b"being written by another replica")

    create_app(Settings(home=tmp_path))

    assert [p.name for p in tmp.iterdir()] == ["in-flight"]
