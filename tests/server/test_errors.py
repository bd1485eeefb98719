"""The error contract: every failure is `{"error": {"code", "message"}}` with the right status."""

from __future__ import annotations

import pytest

from loopml import errors
from loopml.server.errors import status_for

from .support import API, Api


def test_unknown_route_and_method(api: Api) -> None:
    missing = api.client.get(f"{API}/nope", headers=api.headers())
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = api.client.delete(f"{API}/experiments", headers=api.headers())
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_malformed_json_on_a_pydantic_route(api: Api) -> None:
    response = api.client.post(
        f"{API}/experiments", content=b"{nope", headers={**api.headers(), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_json"
    assert error["message"]


def test_json_nested_too_deeply_is_invalid_json_saying_so(api: Api) -> None:
    response = api.client.post(
        f"{API}/experiments",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_json"
    assert "nested too deeply" in error["message"]


def test_a_body_that_is_not_utf8_is_invalid_json_saying_so(api: Api) -> None:
    response = api.client.post(
        f"{API}/experiments",
        content='{"name": "café"}'.encode("latin-1"),
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_json"
    assert "UTF-8" in error["message"]


def test_wrong_types_and_unknown_fields_name_the_field(api: Api) -> None:
    cases = [
        ("/experiments", {"name": 3}, "name"),
        ("/experiments", {"name": "x", "extra": 1}, "extra"),
        ("/runs", {"experiment_id": "one"}, "experiment_id"),
        ("/runs", {"experiment_id": 1, "params": {"a": ["b"]}}, "params"),
        ("/runs", {"experiment_id": 1, "tags": {"a": "nul\x00byte"}}, "tags"),
        ("/runs/search", {"experiment_ids": [1], "filter": "tags.a = 'x\x00'"}, "filter"),
        ("/runs/search", {"experiment_ids": []}, "experiment_ids"),
        ("/runs/search", {"experiment_ids": [1], "max_results": 0}, "max_results"),
    ]
    for path, body, field in cases:
        response = api.client.post(f"{API}{path}", json=body, headers=api.headers())
        assert response.status_code == 400, (path, body, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_request"
        assert field in error["message"], (field, error["message"])


def test_service_validation_errors_are_400(api: Api) -> None:
    response = api.client.post(f"{API}/experiments", json={"name": "a\nb"}, headers=api.headers())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_name"


def test_huge_integers_are_400_not_500(api: Api) -> None:
    response = api.client.get(f"{API}/experiments/{2**70}", headers=api.headers())
    assert response.status_code == 400
    response = api.client.post(f"{API}/runs", json={"experiment_id": 2**70}, headers=api.headers())
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.RunNotFound, 404),
        (errors.InvalidFilter, 400),
        (errors.PayloadTooLarge, 413),
        (errors.AlreadyExists, 400),
        (errors.AuthenticationRequired, 401),
        (errors.PermissionDenied, 403),
        (errors.ArtifactCorrupted, 400),
        (errors.AuditChainBroken, 409),
        (errors.RemoteError, 500),
        (errors.DeliveryFailed, 500),
    ],
)
def test_status_mapping(error: type[errors.LoopmlError], status: int) -> None:
    assert status_for(error("x")) == status


def test_unhandled_exception_is_a_generic_500(api: Api) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    api.app.add_api_route("/boom", boom)
    from .support import TestClient

    with TestClient(api.app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert "secret internals" not in error["message"]
