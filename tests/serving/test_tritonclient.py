"""Triton's own HTTP client (tritonclient[http]) against a replica on a real socket, JSON tensors only."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from .support import FEATURES, LiveServer, Packages, deployment, make_app, version

httpclient = pytest.importorskip("tritonclient.http")
triton_utils = pytest.importorskip("tritonclient.utils")


@pytest.fixture(scope="module")
def server(packages: Packages) -> Iterator[LiveServer]:
    app, _ = make_app(deployment(version(packages, 1), version(packages, 2, weight=0, role="canary")))
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def client(server: LiveServer) -> Iterator[object]:
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    yield client
    client.close()


def test_health_and_metadata(client: object) -> None:
    assert client.is_server_live()  # type: ignore[attr-defined]
    assert client.is_server_ready()  # type: ignore[attr-defined]
    assert client.is_model_ready("bike")  # type: ignore[attr-defined]
    assert not client.is_model_ready("nope")  # type: ignore[attr-defined]
    metadata = client.get_model_metadata("bike")  # type: ignore[attr-defined]
    assert [tensor["name"] for tensor in metadata["inputs"]] == FEATURES
    assert metadata["outputs"][0]["name"] == "predict"


def test_infer_one_tensor_per_column(client: object, packages: Packages) -> None:
    records = packages.records(5)
    inputs = []
    for name in FEATURES:
        values = np.array([row[name] for row in records])
        dtype = "FP64" if values.dtype.kind == "f" else "INT64"
        tensor = httpclient.InferInput(name, list(values.shape), dtype)
        tensor.set_data_from_numpy(values.astype(np.float64 if dtype == "FP64" else np.int64), binary_data=False)
        inputs.append(tensor)
    outputs = [httpclient.InferRequestedOutput("predict", binary_data=False)]
    result = client.infer("bike", inputs, outputs=outputs, request_id="triton-1")  # type: ignore[attr-defined]
    assert result.as_numpy("predict").tolist() == packages.expected(1, records)
    response = result.get_response()
    assert response["id"] == "triton-1"
    assert response["model_version"] == "1"


def test_infer_one_matrix_tensor_on_a_named_version(client: object, packages: Packages) -> None:
    records = packages.records(3)
    matrix = np.array([[row[name] for name in FEATURES] for row in records], dtype=np.float64)
    tensor = httpclient.InferInput("input", list(matrix.shape), "FP64")
    tensor.set_data_from_numpy(matrix, binary_data=False)
    result = client.infer(  # type: ignore[attr-defined]
        "bike", [tensor], model_version="2", outputs=[httpclient.InferRequestedOutput("predict", binary_data=False)]
    )
    assert result.as_numpy("predict").tolist() == packages.expected(2, records)


def test_errors_reach_the_client_as_exceptions_with_the_message(client: object, packages: Packages) -> None:
    tensor = httpclient.InferInput("temp", [1], "FP64")
    tensor.set_data_from_numpy(np.array([0.3]), binary_data=False)
    with pytest.raises(triton_utils.InferenceServerException, match="missing input 'season'"):
        client.infer("bike", [tensor])  # type: ignore[attr-defined]
    binary = httpclient.InferInput("temp", [1], "FP64")
    binary.set_data_from_numpy(np.array([0.3]), binary_data=True)
    with pytest.raises(triton_utils.InferenceServerException, match="binary_data=False"):
        client.infer("bike", [binary])  # type: ignore[attr-defined]
    assert client.is_server_live()  # type: ignore[attr-defined]
