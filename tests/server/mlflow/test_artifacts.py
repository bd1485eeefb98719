"""MLflow's artifact proxy: streamed into loopml's artifact store, hostile paths refused, cut-off uploads
leave nothing. In-process, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from ..support import ADMIN_SECRET, Api
from ..test_artifacts import HOSTILE_PATHS
from .support import call, error, experiment, run

PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def _run(api: Api) -> tuple[str, str]:
    experiment_id = experiment(api)
    return experiment_id, run(api, experiment_id)["info"]["run_id"]


def test_put_get_and_list_through_the_proxy(api: Api) -> None:
    experiment_id, run_id = _run(api)
    root = f"{experiment_id}/{run_id}/artifacts"
    for name, data in (("notes.txt", b"hello"), ("model/MLmodel", b"flavors: {}"), ("model/data/w.bin", b"\x00" * 10)):
        put = api.client.put(f"{PROXY}/{root}/{name}", content=data, headers=api.headers())
        assert put.status_code == 200, put.text
    got = api.client.get(f"{PROXY}/{root}/model/MLmodel", headers=api.headers())
    assert got.status_code == 200 and got.content == b"flavors: {}"

    listed = api.client.get(PROXY, params={"path": root}, headers=api.headers()).json()["files"]
    assert listed == [
        {"path": "model", "is_dir": True},
        {"path": "notes.txt", "is_dir": False, "file_size": 5},
    ]
    inner = api.client.get(PROXY, params={"path": f"{root}/model"}, headers=api.headers()).json()["files"]
    assert [f["path"] for f in inner] == ["MLmodel", "data"]
    by_run = call(api, "GET", "/artifacts/list", {"run_id": run_id, "path": "model"})
    assert [f["path"] for f in by_run["files"]] == ["model/MLmodel", "model/data"]
    assert by_run["root_uri"] == f"mlflow-artifacts:/{root}"
    # the same files through loopml's own API
    native = api.client.get(f"/api/v1/runs/{run_id}/artifacts", headers=api.headers()).json()["artifacts"]
    assert sorted(a["path"] for a in native) == ["model/MLmodel", "model/data/w.bin", "notes.txt"]


def test_wrong_locations_are_not_found(api: Api) -> None:
    experiment_id, run_id = _run(api)
    other = experiment(api, "other")
    for path in (
        f"{other}/{run_id}/artifacts/x.txt",  # the run is in another experiment
        f"{experiment_id}/{'0' * 32}/artifacts/x.txt",
        f"{experiment_id}/{run_id}/elsewhere/x.txt",
        f"{experiment_id}/models/m-1/x.txt",
        f"nope/{run_id}/artifacts/x.txt",
    ):
        answer = api.client.put(f"{PROXY}/{path}", content=b"x", headers=api.headers())
        assert error(answer) == (404, "RESOURCE_DOES_NOT_EXIST"), path
    missing = api.client.get(f"{PROXY}/{experiment_id}/{run_id}/artifacts/none.txt", headers=api.headers())
    assert error(missing) == (404, "RESOURCE_DOES_NOT_EXIST")


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_hostile_paths_are_refused_in_every_position(api: Api, tmp_path: Path) -> None:
    experiment_id, run_id = _run(api)
    before = _files(tmp_path)
    for hostile in HOSTILE_PATHS:
        for path in (
            f"{experiment_id}/{run_id}/artifacts/{hostile}",
            f"{hostile}/{run_id}/artifacts/x.txt",
            f"{experiment_id}/{hostile}/artifacts/x.txt",
            f"{experiment_id}/{run_id}/{hostile}/x.txt",
        ):
            upload = api.client.put(f"{PROXY}/{path}", content=b"owned", headers=api.headers())
            assert upload.status_code in (400, 404), (path, upload.text)
            assert error(upload)[1] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"), path
            assert api.client.get(f"{PROXY}/{path}", headers=api.headers()).status_code in (400, 404), path
        listing = api.client.get(
            PROXY, params={"path": f"{experiment_id}/{run_id}/artifacts/{hostile}"}, headers=api.headers()
        )
        assert listing.status_code in (400, 404), hostile
    assert _files(tmp_path) - before == set()
    assert call(api, "GET", "/artifacts/list", {"run_id": run_id}).get("files") == []


def test_an_upload_cut_off_midway_leaves_nothing_visible(api: Api) -> None:
    experiment_id, run_id = _run(api)
    path = f"{PROXY}/{experiment_id}/{run_id}/artifacts/partial.bin"
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"x" * 100_000, "more_body": True},
        {"type": "http.request", "body": b"y" * 100_000, "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await anyio.sleep(3600)  # pragma: no cover - the app must not read past the disconnect
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {ADMIN_SECRET}".encode()), (b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }

    async def main() -> None:
        await api.app(scope, receive, send)

    anyio.run(main)
    assert not messages
    assert call(api, "GET", "/artifacts/list", {"run_id": run_id}).get("files") == []
    assert not (api.artifact_root / "blobs").exists()
    assert not list((api.artifact_root / "tmp").glob("*"))


def test_viewers_read_but_do_not_write(api: Api) -> None:
    experiment_id, run_id = _run(api)
    root = f"{PROXY}/{experiment_id}/{run_id}/artifacts"
    assert api.client.put(f"{root}/a.txt", content=b"a", headers=api.headers()).status_code == 200
    viewer = api.token("viewer")
    assert error(api.client.put(f"{root}/b.txt", content=b"b", headers=api.headers(viewer))) == (
        403,
        "PERMISSION_DENIED",
    )
    assert api.client.get(f"{root}/a.txt", headers=api.headers(viewer)).content == b"a"
    assert error(api.client.get(f"{root}/a.txt")) == (401, "UNAUTHENTICATED")
