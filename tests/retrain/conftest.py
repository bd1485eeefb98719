"""A world for retraining loops: a registered model whose version 1 is `champion`, serving on a deployment
watched by a monitor, and a training pipeline in a file the policy names."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loopml.artifacts import open_artifact_store
from loopml.deploy import DeployService
from loopml.domain import Principal, Role
from loopml.domain.monitoring import MonitorWindow
from loopml.monitoring import MonitoringService
from loopml.pipelines import PipelineService, load_pipeline, run_pipeline
from loopml.registry import RegistryService
from loopml.retraining import RetrainController, RetrainService
from loopml.store import MetadataStore
from loopml.store.audit import now_ms

ADMIN = Principal("ann", Role.ADMIN, None)
EDITOR = Principal("ed", Role.EDITOR, None)
VIEWER = Principal("vic", Role.VIEWER, None)

PIPELINE = """
import pandas as pd
from sklearn.linear_model import LinearRegression

import loopml as lm


@lm.step(cache=False)
def fresh(slope: float, trigger: dict | None = None) -> lm.Dataset:
    frame = pd.DataFrame({"temp": [float(i) for i in range(40)]})
    frame["rentals"] = slope * frame["temp"] + 1.0
    return lm.Dataset(frame, name="toy-hours", source="generated")


@lm.step(cache=False)
def train(data: lm.Dataset, fail: bool = False, bias: float = 0.0) -> lm.Model:
    if fail:
        raise RuntimeError("no fresh labels in the window")
    x, y = data.data[["temp"]], data.data["rentals"] + bias
    return lm.Model(LinearRegression().fit(x, y), name="toy", input_example=x.head(3), register="toy")


@lm.pipeline
def retrain(slope: float = 2.0, fail: bool = False, bias: float = 0.0, trigger: dict | None = None):
    return train(fresh(slope, trigger=trigger), fail=fail, bias=bias)
"""


@dataclass
class World:
    store: MetadataStore
    registry: RegistryService
    pipelines: PipelineService
    deploy: DeployService
    monitoring: MonitoringService
    retrain: RetrainService
    pipeline_ref: str

    def controller(self, **options: object) -> RetrainController:
        kwargs: dict[str, object] = {"interval_seconds": 0.05, "lease_seconds": 5.0, "stale_seconds": 1.0}
        kwargs.update(options)
        return RetrainController(self.retrain, self.pipelines, self.deploy, executor="inline", **kwargs)  # type: ignore[arg-type]

    def breach(self, kind: str = "drift", count: int = 3, start: int = 0) -> None:
        """Store `count` windows of the monitor breaching `kind` (as a monitor run would)."""
        at = now_ms()
        with self.store.write("monitor-scheduler") as unit:
            for i in range(start, start + count):
                unit.monitors.put_window(
                    MonitorWindow(
                        monitor="toy-mon", start_time=i * 3_600_000, end_time=(i + 1) * 3_600_000, rows=100,
                        labelled_rows=0, model="toy", version=1, drift={"drifted_share": 0.6}, performance=None,
                        breaches={kind: True}, created_at=at, updated_at=at,
                    )
                )  # fmt: skip

    def drive(self, controller: RetrainController, until: set[str], passes: int = 40) -> str:
        """Tick until the newest loop reaches a state of `until`; its state."""
        state = ""
        for _ in range(passes):
            controller.tick()
            controller.wait_idle(30)
            loops = self.retrain.list_loops(ADMIN)
            state = loops[0].state if loops else ""
            if state in until:
                return state
        return state


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    store = MetadataStore.open(db_url)
    artifacts = open_artifact_store((tmp_path / "artifacts").as_uri())
    registry = RegistryService(store)
    pipelines = PipelineService(store, artifacts)
    deploy = DeployService(store, registry, tmp_path / "request-log")
    monitoring = MonitoringService(store, artifacts, registry, request_log=tmp_path / "request-log")
    file = tmp_path / "toy_pipeline.py"
    file.write_text(textwrap.dedent(PIPELINE))
    ref = f"{file}:retrain"
    run_pipeline(pipelines, ADMIN, load_pipeline(ref), {"slope": 2.0}, "inline")
    registry.set_alias(ADMIN, "toy", "champion", 1)
    deploy.deploy(ADMIN, "toy-dep", "toy@champion")
    monitoring.create_monitor(ADMIN, "toy-mon", "toy-dep", window="1h")
    try:
        yield World(store, registry, pipelines, deploy, monitoring, RetrainService(store, registry), ref)
    finally:
        store.close()
