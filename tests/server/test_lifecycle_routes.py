"""The lifecycle routes and the binary metric series over HTTP: the wire format as documented, and malformed
or hostile input answered with a 4xx that says what to fix, never a 5xx."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from loopml.domain.metric_series import MEDIA_TYPE, decode_series

from .support import API, Api


def test_the_series_body_is_the_documented_layout(api: Api) -> None:
    run_id = str(api.run(api.experiment())["id"])
    body = {"keys": ["loss"] * 3, "values": [0.5, 0.25, 0.125], "steps": [2, 0, 1], "timestamps": [12, 10, 11]}
    assert api.client.post(f"{API}/runs/{run_id}/metrics", json=body, headers=api.headers()).status_code == 200
    response = api.client.get(f"{API}/runs/{run_id}/metric-series/loss", headers=api.headers())
    assert response.status_code == 200 and response.headers["content-type"] == MEDIA_TYPE
    raw = response.content
    magic, key_length, count = struct.unpack_from("<4sIQ", raw)
    assert (magic, key_length, count) == (b"LMS1", 4, 3) and raw[16:20] == b"loss"
    start = 24  # 16 + 4 bytes of key, padded to a multiple of 8
    assert len(raw) == start + 24 * count
    assert np.frombuffer(raw, "<i8", count, start).tolist() == [0, 1, 2]  # by step, as the JSON history
    assert np.frombuffer(raw, "<i8", count, start + 8 * count).tolist() == [10, 11, 12]
    assert np.frombuffer(raw, "<f8", count, start + 16 * count).tolist() == [0.25, 0.125, 0.5]


def test_a_malformed_series_body_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="header"):
        decode_series(b"LMS")
    with pytest.raises(ValueError, match="not a metric series"):
        decode_series(b"JSON" + bytes(20))
    with pytest.raises(ValueError, match="bytes"):
        decode_series(struct.pack("<4sIQ", b"LMS1", 0, 10) + bytes(8))  # 10 points announced, none sent


HOSTILE: list[tuple[str, str, dict[str, object]]] = [
    ("GET", "/runs/{run}/metric-series/%00", {}),
    ("GET", "/runs/not-a-run/metric-series/loss", {}),
    ("GET", "/runs/{run}/metric-series/" + "k" * 300, {}),
    ("DELETE", "/runs/" + "f" * 32, {}),
    ("POST", "/runs/{run}/restore", {"json": {"unexpected": 1}}),
    ("POST", "/runs/search", {"json": {"experiment_ids": [1], "view_type": "everything"}}),
    ("GET", "/experiments", {"params": {"view_type": "DELETED"}}),
    ("PATCH", "/experiments/{experiment}", {"json": {"name": 7}}),
    ("PATCH", "/experiments/{experiment}", {"json": {"name": "x\u0000y"}}),
    ("PATCH", "/experiments/{experiment}", {"json": {}}),
    ("DELETE", "/experiments/99999999999", {}),
    ("DELETE", "/experiments/-1", {}),
    ("POST", "/experiments/{experiment}/tags", {"json": {"tags": {"": "x"}}}),
    ("DELETE", "/runs/{run}/tags/missing", {}),
    ("DELETE", "/models/nope", {}),
    ("DELETE", "/models/nope/versions/0", {}),
    ("DELETE", "/models/nope/versions/abc", {}),
    ("DELETE", "/models/nope/versions/1/tags/k", {}),
]


def test_malformed_and_hostile_input_is_a_4xx_with_a_message(api: Api) -> None:
    experiment = api.experiment()
    run_id = str(api.run(experiment)["id"])
    for method, path, kwargs in HOSTILE:
        url = API + path.format(run=run_id, experiment=experiment)
        response = api.client.request(method, url, headers=api.headers(), **kwargs)  # type: ignore[arg-type]
        assert 400 <= response.status_code < 500, (method, path, response.text)
        error = response.json()["error"]
        assert error["code"] and error["message"], (method, path)


def test_a_deployed_model_is_409_resource_in_use(api: Api) -> None:
    run_id = str(api.run(api.experiment())["id"])
    manifest = b'{"flavor": "sklearn"}'
    put = api.client.put(
        f"{API}/runs/{run_id}/artifacts/model/loopml-model.json", content=manifest, headers=api.headers()
    )
    digest = put.json()["artifact"]["digest"]
    api.client.post(f"{API}/models", json={"name": "bike"}, headers=api.headers())
    version = {"run_id": run_id, "artifact_path": "model", "manifest_digest": digest, "flavor": "sklearn"}
    api.client.post(f"{API}/models/bike/versions", json=version, headers=api.headers())
    api.client.post(f"{API}/deployments", json={"name": "bike-demand", "model": "bike/1"}, headers=api.headers())
    for url in (f"{API}/models/bike", f"{API}/models/bike/versions/1"):
        refused = api.client.delete(url, headers=api.headers())
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "resource_in_use"
        assert "bike-demand" in refused.json()["error"]["message"]
