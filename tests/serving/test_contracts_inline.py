"""A package's data contract is checked on every request: `block` refuses with 422, `warn` answers and counts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

import loopml as lm
from loopml.client.model_packages import contract_yaml
from loopml.data import Contract, RangeCheck, infer_contract
from loopml.errors import InvalidInput
from loopml.registry import save_model
from loopml.serving import ServingVersion

from .support import DATA, FEATURES, Packages, deployment, make_app

NATIVE = "/v1/deployments/bike/predict"


def bike_contract() -> Contract:
    """Inferred from the training data; `temp` must stay in [0, 1.2] (block), `hum` should stay in [0, 1] (warn)."""
    contract = infer_contract(pd.read_csv(DATA).iloc[:3000][FEATURES])
    columns = dict(contract.columns)
    columns["temp"] = dataclasses.replace(columns["temp"], range=RangeCheck(0.0, 1.2, 0.0, "block"))
    columns["hum"] = dataclasses.replace(columns["hum"], range=RangeCheck(0.0, 1.0, 0.0, "warn"))
    for name in FEATURES:  # only temp and hum are under test: no other range or category can fire
        if name not in ("temp", "hum"):
            columns[name] = dataclasses.replace(columns[name], range=None, categories=None)
    return dataclasses.replace(contract, columns=columns)


@pytest.fixture(scope="module")
def contracted(packages: Packages, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("contracted") / "package"
    example = pd.read_csv(DATA).iloc[:5][FEATURES]
    extra = {"contract.yaml": bike_contract().to_yaml().encode()}
    save_model(packages.models[1], target, input_example=example, extra_files=extra)
    return target


def _samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _violations(client: TestClient, column: str, check: str, severity: str) -> float:
    labels = {"deployment": "bike", "model": "bike", "version": "1", "column": column}
    labels |= {"check": check, "severity": severity}
    return _samples(client).get(("loopml_contract_violations_total", tuple(sorted(labels.items()))), 0.0)


def _oip(row: dict[str, object]) -> dict[str, object]:
    return {"inputs": [{"name": k, "shape": [1], "datatype": "FP64", "data": [float(v)]} for k, v in row.items()]}  # type: ignore[arg-type]


def test_block_violation_is_a_422_naming_the_field_on_every_route(packages: Packages, contracted: Path) -> None:
    app, _ = make_app(deployment(ServingVersion("bike", 1, contracted)))
    row = packages.records(1)[0]
    bad = {**row, "temp": 7.5}
    with TestClient(app) as client:
        ok = client.post(NATIVE, json={"records": [row]})
        assert ok.status_code == 200, ok.text
        assert ok.json()["predictions"] == packages.expected(1, [row])

        native = client.post(NATIVE, json={"records": [bad]})
        assert native.status_code == 422
        error = native.json()["error"]
        assert error["code"] == "contract_violation"
        assert "column 'temp'" in error["message"] and "range" in error["message"] and "7.5" in error["message"]
        assert "(block)" in error["message"]
        assert native.headers["x-loopml-model-version"] == "bike/1"

        oip = client.post("/v2/models/bike/infer", json=_oip(bad))
        assert oip.status_code == 422 and "column 'temp'" in oip.json()["error"]

        mlflow = client.post("/invocations", json={"dataframe_records": [row, bad]})
        assert mlflow.status_code == 422
        assert mlflow.json()["error_code"] == "BAD_REQUEST"
        assert mlflow.json()["message"].startswith("row 1: column 'temp'")

        assert _violations(client, "temp", "range", "block") == 3
        samples = _samples(client)
    refused = {"deployment": "bike", "model": "bike", "version": "1", "status": "422"}
    for protocol in ("native", "oip", "invocations"):
        key = ("loopml_requests_total", tuple(sorted({**refused, "protocol": protocol}.items())))
        assert samples[key] == 1


def test_warn_violation_is_answered_and_counted(packages: Packages, contracted: Path) -> None:
    app, _ = make_app(deployment(ServingVersion("bike", 1, contracted)))
    row = packages.records(1)[0]
    with TestClient(app) as client:
        assert _violations(client, "hum", "range", "warn") == 0
        response = client.post(NATIVE, json={"records": [{**row, "hum": 5.0}, row, {**row, "hum": -1.0}]})
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 3
        assert client.post("/v2/models/bike/infer", json=_oip({**row, "hum": 5.0})).status_code == 200
        assert _violations(client, "hum", "range", "warn") == 3
        assert _violations(client, "temp", "range", "block") == 0


def test_a_package_without_a_contract_is_served_as_before(packages: Packages) -> None:
    app, _ = make_app(deployment(ServingVersion("bike", 1, packages.v1)))
    row = {**packages.records(1)[0], "temp": 7.5, "hum": 5.0}
    with TestClient(app) as client:
        response = client.post(NATIVE, json={"records": [row]})
        assert response.status_code == 200, response.text
        assert "loopml_contract_violations_total{" not in client.get("/metrics").text
        assert app.host.routes["bike"].by_version[1].served.model.contract is None


def test_log_model_puts_the_contract_in_the_package(
    packages: Packages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LOOPML_TRACKING_URI", "LOOPML_TOKEN", "LOOPML_DATABASE_URL", "LOOPML_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    contract = bike_contract()
    example = pd.read_csv(DATA).iloc[:5][FEATURES]
    with lm.Client(home=tmp_path / "home") as client:
        run = client.runs.create("bike", "contract")
        logged = client.models.log(
            run.id, packages.models[1], "bike-contract", input_example=example, register=True, contract=contract
        )
        client.runs.end(run.id)
        package = client.models.download(f"models:/bike-contract/{logged.version}")  # type: ignore[union-attr]
    assert Contract.from_yaml((package / "contract.yaml").read_text()) == contract
    app, _ = make_app(deployment(ServingVersion("bike", 1, package)))
    with TestClient(app) as client_http:
        bad = {**packages.records(1)[0], "temp": 7.5}
        assert client_http.post(NATIVE, json={"records": [bad]}).status_code == 422


def test_contract_yaml_takes_a_contract_a_path_or_text(tmp_path: Path) -> None:
    contract = bike_contract()
    text = contract.to_yaml()
    path = tmp_path / "contract.yaml"
    path.write_text(text)
    assert contract_yaml(contract) == text
    assert contract_yaml(path) == text
    assert contract_yaml(str(path)) == text
    assert contract_yaml(text) == text
    with pytest.raises(InvalidInput, match="no file"):
        contract_yaml(str(tmp_path / "missing.yaml"))
    with pytest.raises(InvalidInput, match="severity"):
        contract_yaml("version: 1\ncolumns:\n  x:\n    dtype: {type: float, severity: maybe}\n")
