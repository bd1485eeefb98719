"""Datasets logged on runs over HTTP."""

from __future__ import annotations

from .support import API, Api

DIGEST = "ab" * 32


def test_log_and_list_datasets(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    body = {
        "name": "bikes",
        "digest": DIGEST,
        "schema": [["hour", "int64"], ["count", "float64"]],
        "rows": 17379,
        "source": "file:///data/hour.csv",
        "role": "training",
    }
    response = api.client.post(f"{API}/runs/{run_id}/datasets", json=body, headers=api.headers())
    assert response.status_code == 200, response.text
    dataset = response.json()["dataset"]
    assert dataset["digest"] == DIGEST
    assert dataset["schema"] == [["hour", "int64"], ["count", "float64"]]
    assert dataset["rows"] == 17379
    assert dataset["role"] == "training"
    listed = api.client.get(f"{API}/runs/{run_id}/datasets", headers=api.headers()).json()
    assert listed == {"datasets": [dataset]}


def test_bad_dataset_is_400_naming_the_field(api: Api) -> None:
    run_id = api.run(api.experiment())["id"]
    base = {"name": "d", "digest": DIGEST, "schema": [], "rows": 1, "source": "", "role": "training"}
    for change, field in [
        ({"digest": "XYZ"}, "digest"),
        ({"rows": -1}, "rows"),
        ({"role": "prod"}, "role"),
        ({"schema": [["a"]]}, "schema"),
        ({"source": "a\x00b"}, "source"),
    ]:
        response = api.client.post(f"{API}/runs/{run_id}/datasets", json={**base, **change}, headers=api.headers())
        assert response.status_code == 400, (change, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_request"
        assert field in error["message"], (field, error)
