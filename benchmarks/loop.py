"""Loop latency (issue 12): from the window that breaches to the retrained model serving 100% of traffic.

    .venv/bin/python benchmarks/loop.py [--reps 3] [--interval 0.2]

A real `RetrainController` (started as `loopml server` starts it, in its background thread, every
`--interval` seconds) on an embedded SQLite store: a model `bike` version 1 is champion and serves
deployment `bike`; the benchmark stores one breaching drift window of monitor `bike` (as the monitor
scheduler would) and times the loop's own timeline:

- detection: window stored -> loop `triggered`;
- training: `triggered` -> `registered` (the pipeline: 2,000 rows, a linear model; the user's cost);
- gate: `registered` -> `gated` (challenger and champion scored on the same fresh rows, gate stored);
- rollout: `gated` -> `succeeded` (deploy, promotion check, `champion` moved). The policy uses
  `rollout="direct"`: a canary adds the analysis windows the user sets (`analysis_seconds` per step) plus
  at most one controller interval per step.

No anchor runs this loop (MLflow, Evidently and KServe each hold one piece; users write the glue), so there is
no ratio: the target is "everything except training and the canary's analysis windows under 5 s".
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

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

ADMIN = Principal("bench", Role.ADMIN, None)
PIPELINE = """
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

import loopml as lm


@lm.step(cache=False)
def fresh(slope: float = 2.0, trigger: dict | None = None) -> lm.Dataset:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"temp": rng.uniform(0, 35, 2000), "hum": rng.uniform(0, 1, 2000)})
    frame["cnt"] = slope * frame["temp"] - 40 * frame["hum"] + rng.normal(0, 3, 2000)
    return lm.Dataset(frame, name="bike-fresh", source="generated")


@lm.step(cache=False)
def train(data: lm.Dataset) -> lm.Model:
    x, y = data.data[["temp", "hum"]], data.data["cnt"]
    return lm.Model(LinearRegression().fit(x, y), name="bike", input_example=x.head(3), register="bike")


@lm.pipeline
def retrain(slope: float = 2.0, trigger: dict | None = None):
    return train(fresh(slope, trigger=trigger))
"""
GATE = "metrics:\n  - rmse <= champion * 1.02\n"


def one_loop(root: Path, interval: float) -> dict[str, float]:
    store = MetadataStore.open(f"sqlite:///{root / 'loopml.db'}")
    artifacts = open_artifact_store((root / "artifacts").as_uri())
    registry = RegistryService(store)
    pipelines = PipelineService(store, artifacts)
    deploy = DeployService(store, registry, root / "request-log")
    file = root / "bike_pipeline.py"
    file.write_text(textwrap.dedent(PIPELINE))
    run_pipeline(pipelines, ADMIN, load_pipeline(f"{file}:retrain"), {}, "inline")
    registry.set_alias(ADMIN, "bike", "champion", 1)
    deploy.deploy(ADMIN, "bike", "bike@champion")
    MonitoringService(store, artifacts, registry).create_monitor(ADMIN, "bike", "bike", window="1h")
    service = RetrainService(store, registry)
    service.create_policy(
        ADMIN, "bike", "bike", f"{file}:retrain", ["drift:1"], gate=GATE, label="cnt", rollout="direct",
        params={"slope": 3.0},
    )  # fmt: skip
    controller = RetrainController(
        service, pipelines, deploy, interval_seconds=interval, lease_seconds=max(5.0, 3 * interval),
        stale_seconds=60.0, executor="inline",
    )  # fmt: skip
    controller.start()
    try:
        stored = now_ms()
        with store.write("monitor-scheduler") as unit:
            unit.monitors.put_window(
                MonitorWindow("bike", 0, 3_600_000, 500, 0, "bike", 1, {}, None, {"drift": True}, stored, stored)
            )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            loops = service.list_loops(ADMIN, "bike")
            if loops and loops[0].state in ("succeeded", "failed"):
                break
            time.sleep(0.02)
        loop = service.list_loops(ADMIN, "bike")[0]
        if loop.state != "succeeded":
            raise SystemExit(f"the loop ended {loop.state}: {loop.error}")
    finally:
        controller.stop()
        controller.wait_idle(30)
    first = {}
    for event in loop.events:
        first.setdefault(event.state, event.at)
    store.close()
    return {
        "detection": (first["triggered"] - stored) / 1000,
        "training": (first["registered"] - first["triggered"]) / 1000,
        "gate": (first["gated"] - first["registered"]) / 1000,
        "rollout": (first["succeeded"] - first["gated"]) / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.2, help="LOOPML_RETRAIN_INTERVAL_SECONDS")
    args = parser.parse_args()
    results = []
    for _ in range(args.reps):
        with tempfile.TemporaryDirectory() as directory:
            results.append(one_loop(Path(directory), args.interval))
    medians = {k: statistics.median(r[k] for r in results) for k in results[0]}
    overhead = medians["detection"] + medians["gate"] + medians["rollout"]
    print(f"controller interval {args.interval:g} s, {args.reps} loops (median seconds)")
    for key, value in medians.items():
        print(f"  {key:<10} {value:7.3f}")
    print(f"  everything except training: {overhead:.3f} s (target < 5 s)")
    sys.exit(0 if overhead < 5 else 1)


if __name__ == "__main__":
    main()
