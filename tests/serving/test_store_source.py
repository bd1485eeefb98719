"""Replicas reading their deployments from the metadata store (`StoreSpecSource`): packages fetched and
verified into a cache, hot reload on a new revision, and the whole loop: a replica logs its answers, the rollout
controller reads them and promotes the canary, the replica picks the promotion up."""

from __future__ import annotations

import hashlib
import json
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
from loopml.errors import ArtifactCorrupted
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

    def source(self, cache: str = "cache") -> StoreSpecSource:
        blobs = open_artifact_store((self.home / "artifacts").resolve().as_uri())
        return StoreSpecSource(self.store, blobs, ["bike-demand"], self.home / cache)


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
    assert (spec.name, spec.revision, spec.strategy) == ("bike-demand", 1, "single")
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
    with pytest.raises(ArtifactCorrupted):
        stores.source().load()  # a new replica on the same cache re-verifies what it finds


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
    config = ServeConfig(deployments="bike-demand", request_log_dir=str(stores.home / "request-log"))
    source = source_for(config)
    assert isinstance(source, StoreSpecSource) and list(source.load()) == ["bike-demand"]
    app = build_app(config, source)
    assert app.request_log is not None
    app.request_log.close()  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput, match="--deployments"):
        ServeConfig(deployments="bike-demand", model_dir=str(stores.home))
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
