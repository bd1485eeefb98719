"""Artifacts over HTTP: streamed upload, hash checks, listing, download, hostile paths."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

from .support import ADMIN_SECRET, API, Api


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_upload_list_download(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    data = os.urandom(3 * 1024 * 1024 + 17)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    url = f"{API}/runs/{run_id}/artifacts/model/weights.bin"
    response = api.client.put(url, content=chunks(), headers={**api.headers(), "X-Content-SHA256": sha(data)})
    assert response.status_code == 200, response.text
    artifact = response.json()["artifact"]
    assert artifact["path"] == "model/weights.bin"
    assert artifact["digest"] == sha(data)
    assert artifact["size"] == len(data)
    assert artifact["run_id"] == run_id

    api.client.put(f"{API}/runs/{run_id}/artifacts/plots/a b.txt", content=b"hi", headers=api.headers())
    listed = api.client.get(f"{API}/runs/{run_id}/artifacts", headers=api.headers()).json()["artifacts"]
    assert sorted(a["path"] for a in listed) == ["model/weights.bin", "plots/a b.txt"]
    only = api.client.get(f"{API}/runs/{run_id}/artifacts", params={"prefix": "plots"}, headers=api.headers())
    assert [a["path"] for a in only.json()["artifacts"]] == ["plots/a b.txt"]

    download = api.client.get(url, headers=api.headers())
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["x-content-sha256"] == sha(data)
    assert download.headers["content-length"] == str(len(data))
    assert download.headers["content-type"] == "application/octet-stream"


def test_wrong_expected_hash_is_400_and_nothing_is_listed(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    url = f"{API}/runs/{run_id}/artifacts/data.csv"
    response = api.client.put(url, content=b"a,b\n1,2\n", headers={**api.headers(), "X-Content-SHA256": "0" * 64})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "artifact_corrupted"
    assert "0" * 64 in error["message"]
    assert api.client.get(f"{API}/runs/{run_id}/artifacts", headers=api.headers()).json() == {"artifacts": []}
    assert api.client.get(url, headers=api.headers()).status_code == 404
    assert not (api.artifact_root / "blobs").exists()
    assert not list((api.artifact_root / "tmp").glob("*"))  # the partial upload was discarded

    malformed = api.client.put(url, content=b"x", headers={**api.headers(), "X-Content-SHA256": "abc"})
    assert malformed.status_code == 400
    assert "x-content-sha256" in malformed.json()["error"]["message"].lower()


def test_missing_artifact_is_404(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    response = api.client.get(f"{API}/runs/{run_id}/artifacts/nope.txt", headers=api.headers())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "artifact_not_found"


def test_viewer_cannot_upload(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    viewer = api.token("viewer")
    response = api.client.put(f"{API}/runs/{run_id}/artifacts/a.txt", content=b"x", headers=api.headers(viewer))
    assert response.status_code == 403


HOSTILE_PATHS = [
    "..%2f..%2fescaped.txt",
    "%2e%2e/%2e%2e/escaped.txt",
    "%252e%252e/escaped.txt",
    "a/%2e%2e/%2e%2e/escaped.txt",
    "..%5c..%5cescaped.txt",
    "a%5cb.txt",
    "%2fetc%2fescaped.txt",
    "/escaped.txt",
    "C:%5cescaped.txt",
    "file:%2f%2f%2fescaped.txt",
    "a%00b.txt",
    "~/escaped.txt",
]


def test_hostile_paths_are_refused_and_write_nothing_outside_the_store(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    outside = api.artifact_root.parent
    before = files_under(outside.parent)
    for path in HOSTILE_PATHS:
        url = f"{API}/runs/{run_id}/artifacts/{path}"
        upload = api.client.put(url, content=b"owned", headers=api.headers())
        assert upload.status_code in (400, 404), (path, upload.text)
        assert upload.json()["error"]["code"] in ("invalid_path", "not_found"), path
        assert api.client.get(url, headers=api.headers()).status_code in (400, 404), path
        listing = api.client.get(f"{API}/runs/{run_id}/artifacts", params={"prefix": path}, headers=api.headers())
        assert listing.status_code in (200, 400, 404), path
    created = files_under(outside.parent) - before
    assert all(api.artifact_root in p.parents or p.parent == outside for p in created), created
    assert not any("escaped" in p.name for p in files_under(outside.parent))
    assert api.client.get(f"{API}/runs/{run_id}/artifacts", headers=api.headers()).json() == {"artifacts": []}


def test_client_disconnect_mid_upload_publishes_nothing(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"x" * 100_000, "more_body": True},
        {"type": "http.request", "body": b"y" * 100_000, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await anyio.sleep(3600)  # pragma: no cover - the app must not read past the disconnect
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": f"{API}/runs/{run_id}/artifacts/partial.bin",
        "raw_path": f"{API}/runs/{run_id}/artifacts/partial.bin".encode(),
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
    assert api.client.get(f"{API}/runs/{run_id}/artifacts", headers=api.headers()).json() == {"artifacts": []}
    assert not (api.artifact_root / "blobs").exists()
    assert not list((api.artifact_root / "tmp").glob("*"))  # the partial upload was discarded


def test_names_that_are_not_utf8_are_refused_not_merged(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    for raw in ("model-%FF.bin", "model-%FE.bin", "caf%E9.csv", "a%C3"):  # Latin-1 bytes, a cut sequence
        url = f"{API}/runs/{run_id}/artifacts/{raw}"
        upload = api.client.put(url, content=b"data", headers=api.headers())
        assert upload.status_code == 400, (raw, upload.text)
        error = upload.json()["error"]
        assert error["code"] == "invalid_path"
        assert "UTF-8" in error["message"], error
        assert api.client.get(url, headers=api.headers()).status_code == 400
    assert api.client.get(f"{API}/runs/{run_id}/artifacts", headers=api.headers()).json() == {"artifacts": []}
    assert not (api.artifact_root / "blobs").exists()


def test_names_are_decoded_once_and_nfc_normalised(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    base = f"{API}/runs/{run_id}/artifacts"
    decomposed = api.client.put(f"{base}/caf%65%CC%81.csv", content=b"first", headers=api.headers())
    composed = api.client.put(f"{base}/caf%C3%A9.csv", content=b"second", headers=api.headers())
    assert decomposed.json()["artifact"]["path"] == composed.json()["artifact"]["path"] == "caf\u00e9.csv"
    listed = api.client.get(base, headers=api.headers()).json()["artifacts"]
    assert [a["path"] for a in listed] == ["caf\u00e9.csv"]
    assert api.client.get(f"{base}/cafe%CC%81.csv", headers=api.headers()).content == b"second"

    twice = api.client.put(f"{base}/a%2520b.txt", content=b"x", headers=api.headers())
    assert twice.status_code == 400
    assert "more than once" in twice.json()["error"]["message"]
    spaced = api.client.put(f"{base}/a%20b.txt", content=b"x", headers=api.headers())
    assert spaced.json()["artifact"]["path"] == "a b.txt"


def test_bidirectional_controls_in_names_are_refused(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    url = f"{API}/runs/{run_id}/artifacts/invoice%E2%80%AEgpj.exe"
    upload = api.client.put(url, content=b"x", headers=api.headers())
    assert upload.status_code == 400
    assert "bidirectional" in upload.json()["error"]["message"]
