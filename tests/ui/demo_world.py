"""The demo's flow, small, through a real `loopml server`: two Bike Sharing models (champion and challenger,
with the champion's training profile), a deployment with the challenger as a canary, a monitor with windows
over 2012 hours, and a canary's traffic written to the request log the server's rollout controller reads.

Data: Bike Sharing Dataset (Fanaee-T and Gama, 2013), UCI Machine Learning Repository, CC BY 4.0
(examples/data/bike_sharing)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

import loopml as lm
from loopml.data import build_profile
from loopml.serving.records import RequestRecord
from loopml.serving.request_log import RequestLog

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"
FEATURES = ["season", "mnth", "hr", "holiday", "weekday", "workingday", "weathersit", "temp", "atemp", "hum"]
MODEL = DEPLOYMENT = "bike-demand"
MONITOR = "bike"


@dataclass
class DemoWorld:
    client: lm.Client
    log_dir: Path
    champion: HistGradientBoostingRegressor
    challenger: HistGradientBoostingRegressor
    later: pd.DataFrame


def fill(uri: str, token: str, log_dir: Path) -> DemoWorld:
    """Fill the server at `uri` through the public API (the fluent SDK's runs, as a user's script would)."""
    lm.set_tracking_uri(uri, token=token)
    client = lm.get_client()
    hours = pd.read_csv(DATA, parse_dates=["dteday"])
    year_2011 = hours[hours["dteday"].dt.year == 2011]
    train = year_2011[year_2011["dteday"].dt.month <= 9]
    models = []
    for name, frame, depth in (("champion-jan-sep", train, 4), ("challenger-all-2011", year_2011, 6)):
        with lm.start_run(experiment=MODEL, name=name) as run:
            model = HistGradientBoostingRegressor(max_depth=depth, max_iter=30, random_state=0)
            model.fit(frame[FEATURES], frame["cnt"])
            run.log_params({"max_depth": depth, "max_iter": 30})
            run.log_dataset(
                frame[[*FEATURES, "cnt"]],
                "bike-sharing-hours",
                "training",
                source="examples/data/bike_sharing/hour.csv",
            )
            run.log_metric("rmse", float(np.sqrt(np.mean((model.predict(frame[FEATURES]) - frame["cnt"]) ** 2))))
            run.log_model(model, name=MODEL, input_example=frame[FEATURES][:5], register=True)
            models.append(model)
    champion, challenger = models
    client.models.set_alias(MODEL, "champion", 1, reason="lowest validation rmse")
    client.models.set_alias(MODEL, "challenger", 2, reason="trained on all of 2011")
    reference = train[FEATURES].assign(prediction=champion.predict(train[FEATURES]))
    client.monitors.set_reference_profile(MODEL, 1, build_profile(reference, prediction_column="prediction"))
    client.deployments.deploy(DEPLOYMENT, f"{MODEL}@champion", reason="first deployment")
    later = hours[hours["dteday"].dt.year == 2012]
    requests = later[FEATURES].assign(
        prediction=champion.predict(later[FEATURES]),
        request_id=[f"hour-{i}" for i in later["instant"]],
        time_ms=later["dteday"].to_numpy().astype("datetime64[ms]").astype("int64")
        + later["hr"].to_numpy() * 3_600_000,
    )[:4000]
    labels = pd.DataFrame({"request_id": requests["request_id"], "label": later["cnt"][:4000].to_numpy()})
    client.monitors.create(MONITOR, DEPLOYMENT, window="1000", label_delay="0s", model=MODEL, version=1)
    client.monitors.backfill(MONITOR, requests, labels=labels)
    return DemoWorld(client, log_dir, champion, challenger, later)


def start_canary(
    world: DemoWorld, analysis_seconds: int = 2, reason: str = "challenger beats the champion offline"
) -> int:
    """Deploy the challenger as a canary; returns the revision's time (its first analysis window starts then)."""
    canary = world.client.deployments.deploy(
        DEPLOYMENT,
        f"{MODEL}@challenger",
        strategy="canary",
        canary_steps=(10, 50, 100),
        analysis_seconds=analysis_seconds,
        thresholds={"min_requests": 30, "max_prediction_distance": 0.5},
        reason=reason,
    )
    return canary.updated_at


def serve(world: DemoWorld, start_ms: int, hours: int = 1500) -> None:
    """What a replica would log for `hours` requests after `start_ms`: 90% answered by the champion, 10% by the
    challenger, each with its real prediction, sealed into the request-log directory the server reads."""
    sample = world.later[:hours]
    answers = {1: world.champion.predict(sample[FEATURES]), 2: world.challenger.predict(sample[FEATURES])}
    log = RequestLog(world.log_dir, flush_ms=20)
    try:
        for i, row in enumerate(sample[FEATURES].itertuples(index=False)):
            version = 2 if i % 10 == 0 else 1
            log.append(
                RequestRecord(
                    request_id=f"canary-{start_ms}-{i}",
                    time_ms=start_ms + 1 + i,
                    deployment=DEPLOYMENT,
                    model=MODEL,
                    version=version,
                    role="canary" if version == 2 else "stable",
                    inputs={name: [value] for name, value in zip(FEATURES, row, strict=True)},
                    outputs=[float(answers[version][i])],
                    latency_ms=5.0,
                    status=200,
                    protocol="native",
                    sticky_key=None,
                )
            )
        log.seal()
    finally:
        log.close()
