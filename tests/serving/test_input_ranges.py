"""Numbers out of range are the client's mistake: a 400 naming the input and the range, never a value that
wraps around, rounds, or a 5xx. OIP datatypes are checked against what they hold; native JSON integers against
int64 (a JSON parser gives integers past 64 bits as floats: those are caught too)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from .support import FEATURES, Packages, deployment, make_app, version

INT_RANGES = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
FLOAT_MAX = {"FP16": "65504.0", "FP32": "3.4028234663852886e38"}
FLOAT_PAST = {"FP16": ["65520.0", "-70000", "1e5"], "FP32": ["3.5e38", "-1e39"]}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client(packages: Packages) -> Iterator[TestClient]:
    app, _ = make_app(deployment(version(packages, 1)))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def infer(client: TestClient, packages: Packages, column: str, datatype: str, literal: str) -> Any:
    """An OIP request whose `column` tensor has `datatype` and holds the JSON number `literal` (written as is:
    numbers past 64 bits are what a client may send and Python's json would not write)."""
    row = packages.records(1)[0]
    parts = []
    for name in FEATURES:
        kind, value = (
            (datatype, literal) if name == column else ("INT64" if type(row[name]) is int else "FP64", row[name])
        )
        parts.append(f'{{"name": "{name}", "shape": [1], "datatype": "{kind}", "data": [{value}]}}')
    return client.post("/v2/models/bike/infer", content='{"inputs": [' + ", ".join(parts) + "]}", headers=JSON)


def native(client: TestClient, packages: Packages, column: str, literal: str, url: str) -> Any:
    row = packages.records(1)[0]
    fields = ", ".join(f'"{name}": {literal if name == column else row[name]}' for name in FEATURES)
    key = "records" if url.startswith("/v1") else "dataframe_records"
    return client.post(url, content=f'{{"{key}": [{{{fields}}}]}}', headers=JSON)


@pytest.mark.parametrize("datatype", list(INT_RANGES))
def test_oip_integer_datatypes_refuse_values_out_of_their_range(
    client: TestClient, packages: Packages, datatype: str
) -> None:
    low, high = INT_RANGES[datatype]
    for past in (high + 1, low - 1):
        response = infer(client, packages, "hr", datatype, str(past))
        assert response.status_code == 400, (past, response.text)
        message = response.json()["error"]
        assert "'hr'" in message and f"range of {datatype}" in message, message
    in_range = min(high, 2**63 - 1)  # the model's int64 column holds the rest of UINT64 (next test)
    assert infer(client, packages, "hr", datatype, str(in_range)).status_code == 200
    assert infer(client, packages, "hr", datatype, str(max(low, -(2**63)))).status_code == 200


def test_the_example_values_of_the_spec(client: TestClient, packages: Packages) -> None:
    for datatype, literal in (("INT8", "300"), ("UINT64", "18446744073709551616"), ("UINT8", "-1"), ("UINT64", "-5")):
        response = infer(client, packages, "hr", datatype, literal)
        assert response.status_code == 400 and datatype in response.json()["error"], (datatype, literal)
    # in UINT64's range, but past the model's int64 column: still the client's to fix
    response = infer(client, packages, "hr", "UINT64", str(2**64 - 1))
    assert response.status_code == 400 and "64-bit" in response.json()["error"]


@pytest.mark.parametrize("datatype", list(FLOAT_MAX))
def test_oip_float_datatypes_refuse_what_would_overflow_them(
    client: TestClient, packages: Packages, datatype: str
) -> None:
    for literal in FLOAT_PAST[datatype]:
        response = infer(client, packages, "temp", datatype, literal)
        assert response.status_code == 400, (literal, response.text)
        assert "'temp'" in response.json()["error"] and f"range of {datatype}" in response.json()["error"]
    assert infer(client, packages, "temp", datatype, FLOAT_MAX[datatype]).status_code == 200
    assert infer(client, packages, "temp", datatype, "-" + FLOAT_MAX[datatype]).status_code == 200


def test_fp64_past_its_range_is_a_400(client: TestClient, packages: Packages) -> None:
    for literal in ("1e309", "-" + "9" * 400):
        response = infer(client, packages, "temp", "FP64", literal)
        assert response.status_code == 400, (literal, response.text)


@pytest.mark.parametrize("url", ["/v1/deployments/bike/predict", "/invocations"])
@pytest.mark.parametrize("column", ["hr", "temp"])  # an int64 column, a float64 column
@pytest.mark.parametrize("literal", [str(2**63), str(-(2**63) - 1), str(2**64), str(10**30)])
def test_native_json_integers_past_int64_are_a_400(
    client: TestClient, packages: Packages, url: str, column: str, literal: str
) -> None:
    response = native(client, packages, column, literal, url)
    assert response.status_code == 400, response.text
    body = response.json()
    message = body["error"]["message"] if "error" in body else body["message"]
    assert f"'{column}'" in message and "64-bit" in message, message


@pytest.mark.parametrize("url", ["/v1/deployments/bike/predict", "/invocations"])
def test_native_json_integers_at_the_int64_bounds_are_served(client: TestClient, packages: Packages, url: str) -> None:
    for literal in (str(2**63 - 1), str(-(2**63))):
        assert native(client, packages, "hr", literal, url).status_code == 200


def test_csv_integers_past_int64_are_a_400(client: TestClient, packages: Packages) -> None:
    row = packages.records(1)[0]
    header = ",".join(FEATURES)
    values = ",".join(str(2**70) if name == "hr" else str(row[name]) for name in FEATURES)
    response = client.post("/invocations", content=f"{header}\n{values}\n", headers={"content-type": "text/csv"})
    assert response.status_code == 400 and "'hr'" in response.json()["message"]
