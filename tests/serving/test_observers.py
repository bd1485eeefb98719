"""The observers run after the answer: metrics, the request log and shadow copies see each exchange, and a
failing observer costs nothing but its own work."""

from __future__ import annotations

import logging
import time

import pytest
from starlette.testclient import TestClient

from loopml.serving import ModelHost, StaticSpecSource, create_serving_app
from loopml.serving.app import PROTOCOLS
from loopml.serving.exchange import Exchange
from loopml.serving.metrics import ServingMetrics
from loopml.serving.observers import MetricsObserver, RequestLogObserver
from loopml.serving.records import RequestRecord

from .support import MemorySink, Packages, deployment, make_app, version


def finished(status: int, code: str = "") -> Exchange:
    exchange = Exchange(
        PROTOCOLS["native"], "r1", {}, "bike", None, generated_id=False, started=time.perf_counter(), time_ms=1
    )
    exchange.deployment, exchange.status, exchange.code, exchange.elapsed = "bike", status, code, 0.002
    return exchange


def test_metrics_observer_counts_requests_that_never_reached_a_version() -> None:
    metrics = ServingMetrics()
    MetricsObserver(metrics).observe(finished(404))
    labels = {"deployment": "bike", "model": "", "version": "", "protocol": "native", "status": "404"}
    assert metrics.registry.get_sample_value("loopml_requests_total", labels) == 1.0


def test_request_log_observer_logs_answers_failures_and_refusals_only(packages: Packages) -> None:
    sink = MemorySink()
    app, _ = make_app(deployment(version(packages, 1)), sink=sink)
    row = packages.records(1)[0]
    with TestClient(app) as client:
        assert client.post("/v1/deployments/bike/predict", json={"records": [row]}).status_code == 200
        assert client.post("/v1/deployments/bike/predict", json={"records": [{"hr": 1}]}).status_code == 400
        choice = app.host.routes["bike"].live[0]
    observer = RequestLogObserver(sink)
    for status, code in ((500, "internal_error"), (422, "contract_violation"), (422, "model_refused_input")):
        exchange = finished(status, code)
        exchange.choice = choice
        observer.observe(exchange)
    assert [(r.status, r.outputs != []) for r in sink.records] == [(200, True), (500, False), (422, False)]
    assert sink.records[0].inputs == {k: [v] for k, v in row.items()}


class RefusingSink(MemorySink):
    def append(self, record: RequestRecord) -> None:
        raise OSError(f"disk full: {record.request_id} not written")


def test_a_failing_request_log_never_fails_the_request(packages: Packages, caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app(deployment(version(packages, 1)), sink=RefusingSink())
    with caplog.at_level(logging.ERROR, logger="loopml.serving"), TestClient(app) as client:
        response = client.post("/v1/deployments/bike/predict", json={"records": packages.records(1)})
        assert response.status_code == 200
        assert 'loopml_requests_total{deployment="bike"' in client.get("/metrics").text  # the metrics ran first
    assert "the request log refused a record" in caplog.text


def test_the_host_brings_its_collaborators_to_the_app(packages: Packages) -> None:
    metrics = ServingMetrics()
    host = ModelHost(StaticSpecSource([deployment(version(packages, 1))]), metrics=metrics)
    app = create_serving_app(host)
    assert app.metrics is metrics and app.backlog is host.backlog
    with TestClient(app) as client:
        assert client.post("/v1/deployments/bike/predict", json={"records": packages.records(1)}).status_code == 200
    assert metrics.registry.get_sample_value("loopml_batch_size_count", {"model": "bike", "version": "1"}) == 1.0
    info = {"deployment": "bike", "model": "bike", "version": "1", "role": "stable", "flavor": "sklearn"}
    assert metrics.registry.get_sample_value("loopml_model_info", info) == 1.0
    assert app.pending == 0
