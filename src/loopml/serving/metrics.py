"""Prometheus metrics of a serving process, on the app's own `CollectorRegistry`.

    loopml_requests_total{deployment,model,version,protocol,status}   counter
    loopml_request_duration_seconds{deployment,model,version}         histogram (ms-range buckets)
    loopml_requests_in_flight{deployment}                             gauge
    loopml_batch_size{model,version}                                  histogram of rows per predict call
    loopml_model_info{deployment,model,version,role,flavor}           gauge, 1 per version served
    loopml_shadow_requests_total{deployment,model,version,outcome}    counter (answered, failed, dropped)
    loopml_contract_violations_total{deployment,model,version,column,check,severity}
                                                                      counter, one per failed check per row
    loopml_deployment_load_failures{deployment,error}                 gauge, 1 while a deployment's latest
                                                                      specs fail to load (error: the class,
                                                                      e.g. ArtifactCorrupted)

Labelled children are cached: `labels()` costs microseconds, a dict lookup a fraction of one.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "ServingMetrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096)


class ServingMetrics:
    """The collectors of one serving app."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "loopml_requests",
            "Prediction and API requests answered, by deployment, model version, protocol and HTTP status.",
            ["deployment", "model", "version", "protocol", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "loopml_request_duration_seconds",
            "Time from request start to the response being sent, in seconds.",
            ["deployment", "model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "loopml_requests_in_flight",
            "Prediction requests being processed.",
            ["deployment"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "loopml_batch_size",
            "Rows per model predict call (micro-batches group concurrent requests).",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.model_info = Gauge(
            "loopml_model_info",
            "Model versions served: 1 per deployment and version.",
            ["deployment", "model", "version", "role", "flavor"],
            registry=self.registry,
        )
        self.shadow = Counter(
            "loopml_shadow_requests",
            "Shadow copies of requests: answered, failed (the shadow's error), or dropped (too many in flight).",
            ["deployment", "model", "version", "outcome"],
            registry=self.registry,
        )
        self.contract_violations = Counter(
            "loopml_contract_violations",
            "Rows of prediction requests that failed a check of the model's data contract (warn: answered; "
            "block: refused with 422), by deployment, model version, column, check and severity.",
            ["deployment", "model", "version", "column", "check", "severity"],
            registry=self.registry,
        )
        self.load_failures = Gauge(
            "loopml_deployment_load_failures",
            "1 while the latest specs of a deployment fail to load on this replica (a package that fails "
            "verification, say): the deployment answers 503 or keeps its older versions. error: the error class.",
            ["deployment", "error"],
            registry=self.registry,
        )
        self._failures: set[tuple[str, str]] = set()
        self._violations: dict[tuple[str, ...], Any] = {}
        self._requests: dict[tuple[str, ...], Any] = {}
        self._latency: dict[tuple[str, str, str], Any] = {}
        self._in_flight: dict[str, Any] = {}
        self._info: set[tuple[str, str, str, str, str]] = set()

    def record(self, deployment: str, model: str, version: str, protocol: str, status: int, seconds: float) -> None:
        key = (deployment, model, version, protocol, str(status))
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.requests.labels(*key)
        counter.inc()
        if model:
            lkey = (deployment, model, version)
            histogram = self._latency.get(lkey)
            if histogram is None:
                histogram = self._latency[lkey] = self.latency.labels(*lkey)
            histogram.observe(seconds)

    def count_violation(
        self, deployment: str, model: str, version: str, column: str, check: str, severity: str
    ) -> None:
        key = (deployment, model, version, column, check, severity)
        counter = self._violations.get(key)
        if counter is None:
            counter = self._violations[key] = self.contract_violations.labels(*key)
        counter.inc()

    def in_flight_gauge(self, deployment: str) -> Any:
        gauge = self._in_flight.get(deployment)
        if gauge is None:
            gauge = self._in_flight[deployment] = self.in_flight.labels(deployment)
        return gauge

    def batch_observer(self, model: str, version: int) -> Any:
        """A function taking one batch size, for `MicroBatcher(observe=...)`."""
        observe: Any = self.batch_size.labels(model, str(version)).observe
        return observe

    def set_models(self, served: set[tuple[str, str, str, str, str]]) -> None:
        """Make `loopml_model_info` list exactly `served` (deployment, model, version, role, flavor)."""
        for labels in self._info - served:
            self.model_info.remove(*labels)
        for labels in served - self._info:
            self.model_info.labels(*labels).set(1)
        self._info = set(served)

    def set_load_failures(self, failed: set[tuple[str, str]]) -> None:
        """Make `loopml_deployment_load_failures` list exactly `failed` (deployment, error class)."""
        for labels in self._failures - failed:
            self.load_failures.remove(*labels)
        for labels in failed - self._failures:
            self.load_failures.labels(*labels).set(1)
        self._failures = set(failed)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
