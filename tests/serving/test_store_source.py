"""Replicas reading their deployments from the metadata store (`StoreSpecSource`): packages fetched and
verified into a cache, hot reload on a new revision, and the whole loop: a replica logs its answers, the rollout
controller reads them and promotes the canary, the replica picks the promotion up."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import loopml
from loopml.artifacts import open_artifact_store
from loopml.deploy import DeployService, RolloutController
from loopml.domain import Principal, Role
from loopml.registry import RegistryService
from loopml.serving import ModelHost, create_serving_app
from loopml.serving.request_log import RequestLog
from loopml.serving.store_source import StoreSpecSource
from loopml.store import MetadataStore

from .support import LiveServer, Packages, wait_until

EDITOR = Principal("ed", Role.EDITOR, None)


@dataclass
class Stores:
    home: Path
    store: MetadataStore
    deploy: DeployService

    def source(self, cache: str = "cache", names: tuple[str, ...] = ("bike-demand",)) -> StoreSpecSource:
        blobs = open_artifact_store((self.home / "artifacts").resolve().as_uri())
        return StoreSpecSource(self.store, blobs, names, self.home / cache)

    def tamper(self, version: int) -> None:
        """Change one byte of the model file of `bike/<version>` in the artifact store (as an attacker or a
        failing disk would), leaving the registry's digests as they were."""
        with self.store.read() as unit:
            model = unit.models.find("bike")
            assert model is not None
            found = unit.model_versions.get(model, version)
            records = unit.artifacts.list(found.run_id, "model/")
        [digest] = [r.digest for r in records if r.path == "model/model.skops"]
        blob = self.home / "artifacts" / "blobs" / "sha256" / digest[:2] / digest[2:4] / digest
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.chmod(0o644)
        blob.write_bytes(bytes(data))


def _register_bike(home: Path, packages: Packages) -> None:
    """Model `bike` with versions 1 and 2: the serving test packages, logged by a run and registered."""
    with loopml.Client(home=home) as client:
        client.models.create("bike")
        for package in (packages.v1, packages.v2):
            run = client.runs.create("serving")
            client.runs.log_artifacts(run.id, package, "model")
            manifest = (package / "loopml-model.json").read_bytes()
            flavor = json.loads(manifest)["flavor"]
            client.models.create_version("bike", run.id, "model", hashlib.sha256(manifest).hexdigest(), flavor)


@pytest.fixture
def stores(packages: Packages, tmp_path: Path) -> Iterator[Stores]:
    """Model `bike` with versions 1 and 2 (the serving test packages, logged by a run and registered)."""
    home = tmp_path / "home"
    _register_bike(home, packages)
    store = MetadataStore.open(f"sqlite:///{(home / 'loopml.db').resolve()}")
    yield Stores(home, store, DeployService(store, RegistryService(store), home / "request-log"))
    store.close()


def test_specs_follow_the_store_and_packages_are_verified(stores: Stores) -> None:
    source = stores.source()
    assert source.load() == {}  # not deployed yet
    stores.deploy.deploy(EDITOR, "bike-demand", "bike/1")
    [spec] = source.load().values()
    assert (spec.name, spec.revision, spec.strategy) == ("bike-demand", 1, "direct")
    [only] = spec.versions
    assert (only.label, only.weight) == ("bike/1", 100)
    assert (only.package_dir / "loopml-model.json").is_file()
    stores.deploy.deploy(EDITOR, "bike-demand", "bike/2", strategy="canary", canary_steps=(25, 100))
    canary = source.load()["bike-demand"]
    assert [(v.label, v.weight, v.role) for v in canary.versions] == [
        ("bike/1", 75, "stable"),
        ("bike/2", 25, "canary"),
    ]
    stores.deploy.rollback(EDITOR, "bike-demand")
    assert [v.label for v in source.load()["bike-demand"].versions] == ["bike/1"]  # a weight-0 canary is not loaded
    tampered = next(p for p in only.package_dir.iterdir() if p.name != "loopml-model.json")
    tampered.write_bytes(tampered.read_bytes() + b"x")
    again = stores.source()  # a new replica on the same cache re-verifies what it finds
    assert again.load() == {}
    assert "ArtifactCorrupted" in again.failures["bike-demand"] and "bike/1" in again.failures["bike-demand"]


def test_replica_logs_controller_promotes_replica_reloads(stores: Stores, packages: Packages) -> None:
    deploy = stores.deploy
    deploy.deploy(EDITOR, "bike-demand", "bike/1")
    canary = deploy.deploy(
        EDITOR,
        "bike-demand",
        "bike/2",
        strategy="canary",
        canary_steps=(50, 100),
        analysis_seconds=1,
        thresholds={
            "min_requests": 20,
            "max_prediction_distance": 100,
            "max_p99_increase_ms": 1000,
            "min_latency_samples": 20,
        },
    )
    log = RequestLog(stores.home / "request-log", flush_ms=20)
    host = ModelHost(stores.source(), poll_seconds=0.05)
    app = create_serving_app(host, request_log=log)
    seen: set[str] = set()
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        for i in range(120):
            response = http.post("/v1/deployments/bike-demand/predict", json={"records": packages.records(1, i)})
            assert response.status_code == 200, response.text
            seen.add(response.headers["x-loopml-model-version"])
        assert seen == {"bike/1", "bike/2"}
        log.flush()
        [decision] = RolloutController(deploy).tick(max(canary.updated_at + 1000, time.time_ns() // 1_000_000 + 1))
        assert (decision.outcome, decision.action) == ("success", "promote"), decision
        assert decision.metrics["stable_requests"] + decision.metrics["candidate_requests"] == 120

        def answered_by_v2_only() -> bool:
            labels = {
                http.post("/v1/deployments/bike-demand/predict", json={"records": packages.records(1)}).headers[
                    "x-loopml-model-version"
                ]
                for _ in range(10)
            }
            return labels == {"bike/2"}

        wait_until(answered_by_v2_only)
    log.close()


def test_serve_deployments_reads_the_store_named_by_the_environment(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.errors import InvalidInput
    from loopml.serving import ServeConfig
    from loopml.serving.runner import build_app, source_for

    stores.deploy.deploy(EDITOR, "bike-demand", "bike/1")
    monkeypatch.setenv("LOOPML_HOME", str(stores.home))
    for name in ("LOOPML_DATABASE_URL", "LOOPML_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    config = ServeConfig(deployments="bike-demand", request_log_dir=str(stores.home / "request-log"), seal_seconds=0.5)
    source = source_for(config)
    assert isinstance(source, StoreSpecSource) and list(source.load()) == ["bike-demand"]
    app = build_app(config, source)
    assert app.request_log is not None
    assert app.request_log.seal_seconds == 0.5  # type: ignore[attr-defined]  # LOOPML_REQUEST_LOG_SEAL_SECONDS
    app.request_log.close()  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput, match="--deployments"):
        ServeConfig(deployments="bike-demand", model_dir=str(stores.home))
    with pytest.raises(InvalidInput, match="--seal-seconds must be positive"):
        ServeConfig(deployments="bike-demand", seal_seconds=0)
    assert ServeConfig.from_json(config.to_json()) == config


@pytest.mark.postgres
def test_on_postgresql_a_replica_reloads_at_once_not_at_its_next_poll(
    packages: Packages, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_DATABASE_URL", pg_url)
    home = tmp_path / "home"
    monkeypatch.setenv("LOOPML_ARTIFACT_ROOT", (home / "artifacts").resolve().as_uri())
    _register_bike(home, packages)
    store = MetadataStore.open(pg_url)
    stores = Stores(home, store, DeployService(store, RegistryService(store), home / "request-log"))
    stores.deploy.deploy(EDITOR, "bike-demand", "bike/1")
    source = stores.source()
    assert source.notifies
    host = ModelHost(source, poll_seconds=60)  # polling alone would take a minute
    app = create_serving_app(host)
    try:
        with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:

            def version() -> str:
                answer = http.post("/v1/deployments/bike-demand/predict", json={"records": packages.records(1)})
                return str(answer.headers["x-loopml-model-version"])

            assert version() == "bike/1"
            stores.deploy.deploy(EDITOR, "bike-demand", "bike/2")
            wait_until(lambda: version() == "bike/2", timeout=10)
            stores.deploy.rollback(EDITOR, "bike-demand")  # instant rollback reaches the replica as fast
            wait_until(lambda: version() == "bike/1", timeout=10)
    finally:
        source.close()
        store.close()


def _predict(http: httpx.Client, packages: Packages, name: str) -> httpx.Response:
    return http.post(f"/v1/deployments/{name}/predict", json={"records": packages.records(1)})


def test_a_package_failing_verification_at_start_takes_down_only_its_deployment(
    stores: Stores, packages: Packages, caplog: pytest.LogCaptureFixture
) -> None:
    stores.deploy.deploy(EDITOR, "bike-demand", "bike/1")
    stores.deploy.deploy(EDITOR, "bike-other", "bike/2")
    stores.tamper(2)
    source = stores.source(names=("bike-demand", "bike-other"))
    app = create_serving_app(ModelHost(source, poll_seconds=0.05))
    with (
        caplog.at_level(logging.ERROR, logger="loopml.serving"),
        LiveServer(app) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        healthy = _predict(http, packages, "bike-demand")
        assert healthy.status_code == 200, healthy.text
        assert healthy.json()["predictions"] == packages.expected(1, packages.records(1))
        down = _predict(http, packages, "bike-other")
        assert down.status_code == 503
        message = down.json()["error"]["message"]
        assert "bike-other" in message and "bike/2" in message and "ArtifactCorrupted" in message
        ready = http.get("/v2/models/bike-other/ready")
        assert ready.status_code == 503 and "ArtifactCorrupted" in ready.json()["error"]
        assert http.get("/v2/models/bike-demand/ready").status_code == 200
        assert http.get("/health").status_code == 200  # the replica serves its other deployment
        assert "bike-other" in http.get("/healthz").json()["load_errors"]
        metrics = http.get("/metrics").text
        assert 'loopml_deployment_load_failures{deployment="bike-other",error="ArtifactCorrupted"} 1.0' in metrics
        assert 'deployment="bike-demand",error=' not in metrics
    logged = [r.getMessage() for r in caplog.records if "bike-other" in r.getMessage()]
    assert logged and "ArtifactCorrupted" in logged[0]
    assert len(logged) == 1  # once, not on every poll that retries it


def test_a_package_failing_verification_on_a_hot_reload_leaves_the_others_updating(
    stores: Stores, packages: Packages
) -> None:
    stores.deploy.deploy(EDITOR, "bike-demand", "bike/1")
    stores.deploy.deploy(EDITOR, "bike-other", "bike/1")
    source = stores.source(names=("bike-demand", "bike-other", "bike-new"))
    app = create_serving_app(ModelHost(source, poll_seconds=0.05))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        assert _predict(http, packages, "bike-other").headers["x-loopml-model-version"] == "bike/1"
        stores.tamper(2)
        stores.deploy.deploy(EDITOR, "bike-other", "bike/2")  # its package no longer verifies
        stores.deploy.deploy(EDITOR, "bike-new", "bike/2")  # a new deployment with nothing older to keep
        wait_until(lambda: {"bike-other", "bike-new"} <= app.host.load_errors.keys(), timeout=60)
        kept = _predict(http, packages, "bike-other")
        assert kept.status_code == 200  # what it served before was verified when it was loaded
        assert kept.headers["x-loopml-model-version"] == "bike/1"
        new = _predict(http, packages, "bike-new")
        assert new.status_code == 503 and "ArtifactCorrupted" in new.json()["error"]["message"]
        assert "bike-other" in http.get("/healthz").json()["load_errors"]
        # the healthy deployment still follows the store: its next version reaches it
        _register_copy_of_v1(stores)
        stores.deploy.deploy(EDITOR, "bike-demand", "bike/3")
        wait_until(
            lambda: _predict(http, packages, "bike-demand").headers["x-loopml-model-version"] == "bike/3", timeout=60
        )
        assert _predict(http, packages, "bike-other").headers["x-loopml-model-version"] == "bike/1"


def _register_copy_of_v1(stores: Stores) -> None:
    """`bike/3`: the package of `bike/1` registered again (a version whose package verifies)."""
    with stores.store.read() as unit:
        model = unit.models.find("bike")
        assert model is not None
        first = unit.model_versions.get(model, 1)
    with loopml.Client(home=stores.home) as client:
        client.models.create_version("bike", first.run_id, "model", first.manifest_digest, first.flavor)
