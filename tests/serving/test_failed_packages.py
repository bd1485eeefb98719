"""A package that fails verification where a replica loads it (`--model-dir`, a deployments file) takes down
only its own deployment: 503 with the reason, while the replica's other deployments answer."""

from __future__ import annotations

import shutil
from pathlib import Path

from starlette.testclient import TestClient

from loopml.serving import ServingVersion

from .support import Packages, deployment, make_app, version


def test_a_tampered_package_at_start_is_a_503_for_its_deployment_only(packages: Packages, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered"
    shutil.copytree(packages.v2, tampered)
    model_file = tampered / "model.skops"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    app, _ = make_app(
        deployment(version(packages, 1), name="good"),
        deployment(ServingVersion("bike", 2, tampered), name="bad"),
    )
    records = packages.records(1)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/v1/deployments/good/predict", json={"records": records}).status_code == 200
        down = client.post("/v1/deployments/bad/predict", json={"records": records})
        assert down.status_code == 503
        assert "model.skops: sha256 does not match" in down.json()["error"]["message"]
        oip = client.post(
            "/v2/models/bad/infer", json={"inputs": [{"name": "hr", "shape": [1], "datatype": "INT64", "data": [1]}]}
        )
        assert oip.status_code == 503 and "sha256" in oip.json()["error"]
        assert client.get("/v2/health/ready").status_code == 200
        assert (
            'loopml_deployment_load_failures{deployment="bad",error="ArtifactCorrupted"} 1.0'
            in client.get("/metrics").text
        )


def test_invocations_on_a_replica_whose_only_deployment_failed_names_the_reason(tmp_path: Path) -> None:
    app, _ = make_app(deployment(ServingVersion("bike", 1, tmp_path / "nowhere"), name="only"))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/invocations", json={"inputs": [[1]]})
        assert response.status_code == 503 and "'only'" in response.json()["message"]
        assert client.get("/ping").status_code == 503  # nothing serves here
