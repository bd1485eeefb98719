"""Admission: a request is authenticated and its body bounded before any route reads or parses it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio
import httpx
import pytest

from .support import ADMIN_SECRET, API, Api

CHUNK = 64 * 1024


@dataclass
class Body:
    """A streamed request body that counts how many of its chunks the server pulled."""

    chunks: int
    size: int = CHUNK
    pulled: int = 0

    @property
    def total(self) -> int:
        return self.chunks * self.size

    async def stream(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield b" " * self.size


def send(api: Api, method: str, path: str, body: Body, headers: dict[str, str]) -> httpx.Response:
    """One request over ASGI whose body is pulled lazily, as the server asks for it."""

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://loopml") as client:
            return await client.request(method, path, content=body.stream(), headers=headers)

    return anyio.run(main)


JSON = {"Content-Type": "application/json"}
BODY_ROUTES = [
    ("POST", f"{API}/runs/search"),
    ("POST", f"{API}/runs"),
    ("PATCH", f"{API}/runs/{'0' * 32}"),
    ("POST", f"{API}/experiments"),
    ("POST", f"{API}/runs/{'0' * 32}/metrics"),
    ("POST", f"{API}/tokens"),
    ("POST", f"{API}/monitors"),
    ("PUT", f"{API}/runs/{'0' * 32}/artifacts/model.bin"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_a_request_without_a_valid_token_is_refused_before_its_body_is_read(api: Api, method: str, path: str) -> None:
    for headers in ({}, api.headers("lml_not_a_token"), {"Authorization": "Basic dXNlcjpwYXNz"}):
        body = Body(chunks=1600)  # 100 MiB, if anyone read it
        response = send(api, method, path, body, {**JSON, **headers})
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["connection"] == "close"
        assert response.json()["error"]["code"] == "unauthenticated"
        assert body.pulled == 0


def test_a_declared_length_over_the_limit_is_413_before_the_body_is_read(api_factory: Callable[..., Api]) -> None:
    api = api_factory(max_request_bytes=1000)
    for method, path in BODY_ROUTES[:-1]:
        response = api.client.request(
            method, path, content=b"{" + b" " * 2000 + b"}", headers={**api.headers(), **JSON}
        )
        assert response.status_code == 413, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "payload_too_large"
        assert "larger than 1000 bytes" in error["message"]
        assert response.headers["connection"] == "close"


def test_a_streamed_body_is_cut_off_at_the_limit(api_factory: Callable[..., Api]) -> None:
    api = api_factory(max_request_bytes=3 * CHUNK)
    for method, path in BODY_ROUTES[:-1]:
        body = Body(chunks=200)
        response = send(api, method, path, body, {**api.headers(), **JSON})
        assert response.status_code == 413, (path, response.text)
        assert response.json()["error"]["code"] == "payload_too_large"
        assert body.pulled <= 4 < body.chunks


def test_a_body_under_the_limit_still_reaches_the_route(api_factory: Callable[..., Api]) -> None:
    api = api_factory(max_request_bytes=2000)
    experiment_id = api.experiment("exp")
    response = api.client.post(
        f"{API}/runs", json={"experiment_id": experiment_id, "tags": {"note": "x" * 1500}}, headers=api.headers()
    )
    assert response.status_code == 200, response.text
    assert response.json()["run"]["tags"]["note"] == "x" * 1500


def test_artifact_uploads_have_their_own_limit(api_factory: Callable[..., Api]) -> None:
    api = api_factory(max_request_bytes=CHUNK, max_artifact_bytes=8 * CHUNK)
    run_id = api.run(api.experiment())["id"]
    url = f"{API}/runs/{run_id}/artifacts/"
    fits = send(api, "PUT", url + "fits.bin", Body(chunks=6), api.headers())
    assert fits.status_code == 200, fits.text
    assert fits.json()["artifact"]["size"] == 6 * CHUNK

    body = Body(chunks=100)
    too_big = send(api, "PUT", url + "too-big.bin", body, api.headers())
    assert too_big.status_code == 413, too_big.text
    assert f"larger than {8 * CHUNK} bytes" in too_big.json()["error"]["message"]
    assert body.pulled < body.chunks
    listed = api.client.get(f"{API}/runs/{run_id}/artifacts", headers=api.headers()).json()["artifacts"]
    assert [a["path"] for a in listed] == ["fits.bin"]


def test_routes_without_a_token_stay_open(api: Api) -> None:
    assert api.client.get(f"{API}/health").status_code == 200
    assert api.client.get(f"{API}/openapi.json").status_code == 200
    unknown = api.client.post(f"{API}/no-such-route", content=b"x" * 10)
    assert unknown.status_code == 404


def test_an_admitted_request_is_served_as_its_token(api: Api) -> None:
    viewer = api.token("viewer")
    experiment_id = api.experiment("exp")
    refused = api.client.post(f"{API}/runs", json={"experiment_id": experiment_id}, headers=api.headers(viewer))
    assert refused.status_code == 403
    allowed = api.client.post(
        f"{API}/runs", json={"experiment_id": experiment_id}, headers={"Authorization": f"bearer {ADMIN_SECRET}"}
    )
    assert allowed.status_code == 200, allowed.text
