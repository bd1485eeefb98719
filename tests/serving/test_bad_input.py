"""Bad requests on every protocol: a 4xx in the protocol's error shape naming what to fix, never a 5xx, and the
server keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from .support import FEATURES, Packages, deployment, make_app, version

MAX_BODY = 4096
URLS = {"native": "/v1/deployments/bike/predict", "oip": "/v2/models/bike/infer", "invocations": "/invocations"}


@pytest.fixture(scope="module")
def client(packages: Packages) -> Iterator[TestClient]:
    app, _ = make_app(deployment(version(packages, 1)), max_body_bytes=MAX_BODY)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def body_for(protocol: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """A well-formed request of `protocol` for `records` (whatever values they hold)."""
    if protocol == "native":
        return {"records": records}
    if protocol == "invocations":
        return {"dataframe_records": records}
    names = list(records[0]) if records else FEATURES
    return {
        "inputs": [
            {
                "name": name,
                "shape": [len(records)],
                "datatype": _datatype(records, name),
                "data": [r[name] for r in records],
            }
            for name in names
        ]
    }


def _datatype(records: list[dict[str, Any]], name: str) -> str:
    values = [r[name] for r in records]
    if any(isinstance(v, str) for v in values):
        return "BYTES"
    return "INT64" if all(type(v) is int for v in values) else "FP64"


def error_message(protocol: str, response: Any) -> str:
    body = response.json()
    if protocol == "native":
        assert set(body["error"]) == {"code", "message"}
        return str(body["error"]["message"])
    if protocol == "oip":
        assert set(body) == {"error"}
        return str(body["error"])
    assert body["error_code"] in ("BAD_REQUEST", "RESOURCE_DOES_NOT_EXIST")
    return str(body["message"])


def with_value(packages: Packages, name: str, value: object) -> list[dict[str, Any]]:
    return [{**row, name: value} for row in packages.records(2)]


CASES = [
    # (case id, expected status, substring of the message)
    ("malformed_json", 400, "not valid JSON"),
    ("not_an_object", 400, ""),
    ("wrong_content_type", 415, "Content-Type"),
    ("oversized_body", 413, str(MAX_BODY)),
    ("missing_column", 400, "hum"),
    ("string_in_float_column", 400, "temp"),
    ("bool_in_float_column", 400, "atemp"),
    ("fraction_in_int_column", 400, "hr"),
    ("null_in_required_column", 400, "windspeed"),
    ("empty_batch", 400, ""),
    ("wrong_shape", 400, ""),
]


def bad_request(case: str, protocol: str, packages: Packages) -> tuple[bytes, dict[str, str]]:
    json_headers = {"Content-Type": "application/json"}
    records = packages.records(2)
    if case == "malformed_json":
        return b'{"records": [{"temp": 0.3,', json_headers
    if case == "not_an_object":
        return b"[1, 2, 3]", json_headers
    if case == "wrong_content_type":
        return orjson.dumps(body_for(protocol, records)), {"Content-Type": "text/plain"}
    if case == "oversized_body":
        return orjson.dumps(body_for(protocol, packages.records(200))), json_headers
    if case == "missing_column":
        return orjson.dumps(
            body_for(protocol, [{k: v for k, v in r.items() if k != "hum"} for r in records])
        ), json_headers
    if case == "string_in_float_column":
        return orjson.dumps(body_for(protocol, with_value(packages, "temp", "0.3"))), json_headers
    if case == "bool_in_float_column":
        return orjson.dumps(body_for(protocol, with_value(packages, "atemp", True))), json_headers
    if case == "fraction_in_int_column":
        return orjson.dumps(body_for(protocol, with_value(packages, "hr", 1.5))), json_headers
    if case == "null_in_required_column":
        body = body_for(protocol, with_value(packages, "windspeed", None))
        if protocol == "oip":  # OIP tensors cannot hold null: the datatype check refuses it
            body["inputs"][-1]["datatype"] = "FP64"
        return orjson.dumps(body), json_headers
    if case == "empty_batch":
        return orjson.dumps(body_for(protocol, [])), json_headers
    assert case == "wrong_shape"
    if protocol == "native":
        columns = {name: [r[name] for r in records] for name in FEATURES}
        columns["temp"] = columns["temp"][:1]
        return orjson.dumps({"columns": columns}), json_headers
    if protocol == "oip":
        body = body_for(protocol, records)
        body["inputs"][0]["shape"] = [3]
        return orjson.dumps(body), json_headers
    rows = [[r[name] for name in FEATURES] for r in records]
    rows[1] = rows[1][:-1]
    return orjson.dumps({"dataframe_split": {"columns": FEATURES, "data": rows}}), json_headers


@pytest.mark.parametrize("protocol", list(URLS))
@pytest.mark.parametrize(("case", "status", "needle"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_4xx_naming_the_problem(
    client: TestClient, packages: Packages, protocol: str, case: str, status: int, needle: str
) -> None:
    content, headers = bad_request(case, protocol, packages)
    response = client.post(URLS[protocol], content=content, headers=headers)
    assert response.status_code == status, response.text
    message = error_message(protocol, response)
    assert needle in message, message
    assert message
    assert "x-request-id" in response.headers
    good = client.post(URLS[protocol], json=body_for(protocol, packages.records(1)))
    assert good.status_code == 200, good.text


@pytest.mark.parametrize("protocol", list(URLS))
def test_unknown_field_is_named(client: TestClient, packages: Packages, protocol: str) -> None:
    response = client.post(URLS[protocol], json=body_for(protocol, with_value(packages, "tmep", 0.3)))
    if protocol == "invocations":  # MLflow drops columns the model does not take
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400, response.text
    assert "tmep" in error_message(protocol, response)


def test_unknown_deployment_and_method(client: TestClient, packages: Packages) -> None:
    response = client.post("/v1/deployments/nope/predict", json={"records": packages.records(1)})
    assert response.status_code == 404
    assert "nope" in response.json()["error"]["message"]
    response = client.post("/v2/models/nope/infer", json=body_for("oip", packages.records(1)))
    assert response.status_code == 404
    assert "nope" in response.json()["error"]
    assert client.get("/v1/deployments/bike/predict").status_code == 405
    assert client.get("/v2/models/bike/infer").status_code == 405
    assert client.get("/invocations").status_code == 405
    assert client.get("/nothing/here").status_code == 404


def test_oip_specific_refusals(client: TestClient, packages: Packages) -> None:
    body = body_for("oip", packages.records(1))
    response = client.post("/v2/models/bike/infer", json=body, headers={"Inference-Header-Content-Length": "10"})
    assert response.status_code == 400
    assert "binary_data=False" in response.json()["error"]
    response = client.post("/v2/models/bike/infer", json={**body, "outputs": [{"name": "proba"}]})
    assert response.status_code == 400
    assert "proba" in response.json()["error"]
    bad_type = {**body, "inputs": [{**body["inputs"][0], "datatype": "FP128"}, *body["inputs"][1:]]}
    response = client.post("/v2/models/bike/infer", json=bad_type)
    assert response.status_code == 400
    assert "FP128" in response.json()["error"]
    matrix = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}]}
    response = client.post("/v2/models/bike/infer", json=matrix)
    assert response.status_code == 400
    assert "[rows, 11]" in response.json()["error"]
    response = client.post("/v2/models/bike/versions/x/infer", json=body)
    assert response.status_code == 400


def test_invocations_specific_refusals(client: TestClient, packages: Packages) -> None:
    records = packages.records(1)
    response = client.post("/invocations", json={"dataframe_records": records, "instances": records})
    assert response.status_code == 400
    assert "exactly one" in response.json()["message"]
    response = client.post("/invocations", content=b"season,hr\n1,2\n", headers={"Content-Type": "text/csv"})
    assert response.status_code == 400
    assert "mnth" in response.json()["message"]
    response = client.post("/invocations", content=b"\xff\xfe", headers={"Content-Type": "text/csv"})
    assert response.status_code == 400
    response = client.post("/invocations", json={"dataframe_records": records, "params": {"a": 1}})
    assert response.status_code == 400
    assert "params" in response.json()["message"]


def test_chunked_body_over_the_limit_is_413(client: TestClient, packages: Packages) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"records": ['
        for _ in range(200):
            yield orjson.dumps(packages.records(1)[0]) + b","
        yield b"{}]}"

    response = client.post(URLS["native"], content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
