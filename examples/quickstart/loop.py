"""The rest of the loop, after quickstart.py: deploy the champion, serve 2012 traffic through a real serving
replica, roll a challenger out as a canary to promotion (each month's labels reach its analysis as they arrive),
then monitor the deployment over the request log.

    make demo        # runs quickstart.py, then this

Everything runs on the embedded store (./loopml-data, or LOOPML_HOME): the replica reads its deployment
from the store and logs every answer; the rollout controller (which `loopml server` runs in the background)
is ticked here by hand; the monitor reads the replica's published request log, never the training data.

Data: Bike Sharing Dataset (Fanaee-T and Gama, 2013), UCI Machine Learning Repository, CC BY 4.0.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

with warnings.catch_warnings():  # Starlette asks for httpx2 behind its TestClient; it runs the same on httpx
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient

import loopml as lm
from loopml.data import build_profile
from loopml.deploy import DeployService, RolloutController
from loopml.registry import RegistryService
from loopml.serving import ServeConfig
from loopml.serving.runner import build_app
from loopml.settings import Settings
from loopml.store import MetadataStore

DATA = Path(__file__).resolve().parents[1] / "data" / "bike_sharing" / "hour.csv"
FEATURES = [
    "season",
    "mnth",
    "hr",
    "holiday",
    "weekday",
    "workingday",
    "weathersit",
    "temp",
    "atemp",
    "hum",
    "windspeed",
]
MODEL = DEPLOYMENT = "bike-demand"
URL = f"/v1/deployments/{DEPLOYMENT}/predict"


def send(http: TestClient, hours: pd.DataFrame) -> tuple[list[float], dict[str, int]]:
    """One request per hour of data; the request id is the hour's id, so labels can be joined later."""
    latencies, versions = [], {}
    for row in hours.itertuples(index=False):
        record = {name: getattr(row, name) for name in FEATURES}
        started = time.perf_counter()
        response = http.post(URL, json={"records": [record]}, headers={"X-Request-Id": f"hour-{row.instant}"})
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        label = response.headers["x-loopml-model-version"]
        versions[label] = versions.get(label, 0) + 1
    return latencies, versions


def report(step: str, latencies: list[float], versions: dict[str, int]) -> None:
    p99 = statistics.quantiles(latencies, n=100)[98]
    served = ", ".join(f"{label}: {count}" for label, count in sorted(versions.items()))
    median = statistics.median(latencies)
    print(f"  {step}: {len(latencies)} requests, median {median:.1f} ms, p99 {p99:.1f} ms ({served})")


def describe(numbers: dict[str, Any]) -> str:
    """The numbers of one rollout analysis, in one line."""
    quality = numbers.get("quality", {})
    if quality.get("verdict") in ("pass", "fail"):
        judged = f"{quality['metric']} {quality['candidate']:.1f} vs {quality['stable']:.1f} ({quality['verdict']})"
    else:
        judged = "waiting for labels"
    return (
        f"error rate {numbers.get('candidate_error_rate', 0):.1%} vs {numbers.get('stable_error_rate', 0):.1%}, "
        f"p99 {numbers.get('candidate_p99_ms', 0):.1f} vs {numbers.get('stable_p99_ms', 0):.1f} ms, "
        f"prediction distance {numbers.get('prediction_distance') or 0:.3f}, quality {judged}"
    )


def main() -> int:
    client = lm.get_client()
    hours = pd.read_csv(DATA, parse_dates=["dteday"])
    year_2011 = hours[hours["dteday"].dt.year == 2011]
    train = year_2011[year_2011["dteday"].dt.month <= 9]
    champion = client.models.resolve(f"models:/{MODEL}@champion")
    print(f"champion: {champion.uri}")

    # The reference for monitoring: the champion's training data and its predictions on it.
    loaded = client.models.load(f"models:/{MODEL}@champion")
    reference = train[FEATURES].assign(prediction=loaded.predict(train[FEATURES]), cnt=train["cnt"])
    client.monitors.set_reference_profile(
        MODEL, champion.version, build_profile(reference, prediction_column="prediction", label_column="cnt")
    )

    # A challenger that has seen the whole of 2011.
    with lm.start_run(experiment=MODEL, name="challenger-all-2011") as run:
        model = HistGradientBoostingRegressor(max_depth=8, max_iter=300, random_state=0)
        model.fit(year_2011[FEATURES], year_2011["cnt"])
        challenger = run.log_model(model, name=MODEL, input_example=year_2011[FEATURES][:5], register=True)
    client.models.set_alias(MODEL, "challenger", challenger.version, reason="trained on all of 2011")
    print(f"challenger: {challenger.uri}")

    settings = Settings()
    log_dir = settings.home.resolve() / "request-log"
    client.deployments.deploy(DEPLOYMENT, f"{MODEL}@champion", reason="first deployment")
    app = build_app(ServeConfig(deployments=DEPLOYMENT, request_log_dir=str(log_dir), poll_seconds=0.2))
    store = MetadataStore.open(settings.resolved_database_url())
    controller = RolloutController(DeployService(store, RegistryService(store), log_dir), interval_seconds=1)
    later = hours[hours["dteday"].dt.year == 2012]

    with TestClient(app) as http:
        print("\nserving (one loopml replica in this process, reading its deployment from the store):")
        report("2012-01..02, champion", *send(http, later[later["dteday"].dt.month <= 2]))

        canary = client.deployments.deploy(
            DEPLOYMENT,
            f"{MODEL}@challenger",
            strategy="canary",
            canary_steps=(10, 50, 100),
            analysis_seconds=2,
            thresholds={"min_requests": 30, "max_prediction_distance": 0.5},
            reason="challenger beats the champion offline",
        )
        print(f"\ncanary of {challenger.uri}: steps 10% -> 50% -> 100%, 2 s analysis windows")
        month = 3
        while client.deployments.status(DEPLOYMENT).state == "progressing" and month <= 12:
            time.sleep(0.5)  # let the replica pick up the new weights
            hours_of_month = later[later["dteday"].dt.month == month]
            report(f"2012-{month:02d}", *send(http, hours_of_month))
            app.request_log.flush()  # type: ignore[union-attr]
            # The month's actual rentals arrive as labels, joined with the answers by request id.
            client.feedback.log_many(
                [{"request_id": f"hour-{r.instant}", "label": int(r.cnt)} for r in hours_of_month.itertuples()]
            )
            time.sleep(2)
            for decision in controller.tick():
                print(f"    analysis: {decision.outcome} -> {decision.action}: {describe(decision.metrics)}")
                if decision.outcome == "inconclusive":
                    print(f"      ({decision.reason})")
            month += 1
        state = client.deployments.status(DEPLOYMENT)
        print(f"  deployment {DEPLOYMENT}: {state.state}, revision {state.revision}, started as {canary.revision}")
        champion_now = client.models.resolve(f"models:/{MODEL}@champion").version
        print(f"  alias champion -> {champion_now} (the deployment follows it: promotion moved it)")
        app.request_log.close()  # type: ignore[union-attr]  # seal and publish the last segment

    # Labels arrive: the actual rentals of each served hour.
    served = later[later["dteday"].dt.month < month]
    client.feedback.log_many(
        [{"request_id": f"hour-{row.instant}", "label": int(row.cnt)} for row in served.itertuples(index=False)]
    )
    client.monitors.create("bike", DEPLOYMENT, window="720", label_delay="0s", consecutive=2, model=MODEL)
    client.monitors.run("bike")
    print("\nmonitor over the request log (windows of 720 requests, labels joined by request id):")
    for window in client.monitors.windows("bike"):
        drifted = window.drift.get("drifted_columns", []) if window.drift else []
        rmse = (window.performance or {}).get("metrics", {}).get("rmse")
        rmse_text = f"rmse {rmse:6.1f}" if rmse is not None else "rmse    n/a"
        print(f"  {window.rows:4d} requests  {rmse_text}  drifted: {', '.join(drifted) or 'none'}")
    for alert in client.monitors.alerts("bike"):
        print(f"  alert: {alert.kind} ({alert.state})")
    target = settings.home / "monitor-report.html"
    page = client.monitors.report("bike", html=target)
    print(f"report: {target} ({len(page) // 1024} KB, self-contained: open it in a browser)")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
