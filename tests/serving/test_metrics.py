"""`/metrics` exposes every serving series, with labels, in Prometheus text format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from .support import Packages, deployment, make_app, version


def test_metrics_expose_every_series_with_labels(packages: Packages) -> None:
    spec = deployment(version(packages, 1), version(packages, 2, role="shadow"))
    app, _ = make_app(spec)
    with TestClient(app) as client:
        for _ in range(3):
            assert client.post("/v1/deployments/bike/predict", json={"records": packages.records(2)}).status_code == 200
        assert (
            client.post(
                "/v1/deployments/bike/predict", content=b"{", headers={"Content-Type": "application/json"}
            ).status_code
            == 400
        )
        assert client.post("/invocations", json={"dataframe_records": packages.records(1)}).status_code == 200
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    ok = {"deployment": "bike", "model": "bike", "version": "1"}
    assert value("loopml_requests_total", **ok, protocol="native", status="200") == 3
    assert value("loopml_requests_total", deployment="bike", model="", version="", protocol="native", status="400") == 1
    assert value("loopml_requests_total", **ok, protocol="invocations", status="200") == 1
    assert value("loopml_request_duration_seconds_count", **ok) == 4
    assert value("loopml_request_duration_seconds_bucket", **ok, le="+Inf") == 4
    assert value("loopml_requests_in_flight", deployment="bike") == 0
    assert value("loopml_batch_size_sum", model="bike", version="1") == 7
    assert value("loopml_model_info", **ok, role="stable", flavor="sklearn") == 1
    assert (
        value("loopml_model_info", deployment="bike", model="bike", version="2", role="shadow", flavor="sklearn") == 1
    )
