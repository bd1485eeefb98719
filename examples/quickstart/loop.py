"""The closed loop on real processes: serve 2012 to a model trained on 2011, watch it degrade, retrain, gate,
roll out as a canary, and watch the error fall again.

    make demo        # or: .venv/bin/python examples/quickstart/loop.py [--out loopml-demo]

What runs, each as its own process, as a user would start them (examples/quickstart/processes.py):
`loopml server` (REST API, monitor scheduler, retraining and rollout controllers), `quickstart.py` (trains
on 2011 through the server and makes the best model the champion) and a `loopml serve` replica (reads its
deployment from the store, logs every answer). This script then plays the world: it replays 2012 hour by
hour as HTTP traffic to the replica in accelerated time (one day every --day-seconds), sends each day's
actual rentals as labels one day late through `POST /api/v1/feedback` (and to a warehouse directory the
retraining pipeline reads), and reports what the server does by itself: monitor windows and alerts, the
retraining loop of its policy (trigger -> retrain_pipeline.py -> registered challenger -> canary ->
`champion` moved), canary analyses.

The one step that is the script's is the gate: the policy asks for approval, and the script approves the
loop when the challenger's RMSE on the newest labelled week is not above the champion's on the same rows
(the loop's own gate reads registration metrics, which a pipeline's model does not have yet).

Outputs in --out: the timeline (timeline.json), the monitor's HTML report (monitor-report.html), the
processes' logs (loopml-data/logs/). Exit code 0 when the loop ran and the error after it is lower than
before, 1 otherwise.

Data: Bike Sharing Dataset (Fanaee-T and Gama, 2013), UCI Machine Learning Repository, CC BY 4.0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from processes import LocalStack, loopml_command
from sklearn.metrics import root_mean_squared_error

import loopml as lm

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data" / "bike_sharing" / "hour.csv"
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
TARGET = "cnt"
MODEL = DEPLOYMENT = MONITOR = "bike-demand"
WINDOW_HOURS = 168  # the monitor's windows: a week of hourly requests
GATE_DAYS = 7  # the gate compares challenger and champion on the newest labelled week (held out of training)
WINDOWS_AFTER = 3  # stop once this many windows served by the new champion have their labels
MARKER = ".loopml-demo"  # in a home this script created, so a rerun may replace it (and nothing else)

SERVER_SETTINGS = {
    "LOOPML_MONITOR_INTERVAL_SECONDS": "1",  # default 60 s: the demo's days last a fraction of a second
    "LOOPML_ROLLOUT_INTERVAL_SECONDS": "1",
    "LOOPML_ROLLOUT_LEASE_SECONDS": "10",
    "LOOPML_REQUEST_LOG_SEAL_SECONDS": "1",
    "LOOPML_RETRAIN_INTERVAL_SECONDS": "1",
    "LOOPML_RETRAIN_LEASE_SECONDS": "10",
    "LOOPML_RETRAIN_STALE_SECONDS": "30",
    "OMP_NUM_THREADS": "1",
}
CANARY_STEPS = (25, 50, 100)
ANALYSIS_SECONDS = 3
# A retrained model is meant to predict differently (demand grew), so the distance between the two versions'
# predictions may be large; quality (MAE on the labelled answers), errors and latency decide.
CANARY_THRESHOLDS = {"min_requests": 50, "min_labels": 50, "min_latency_samples": 50, "max_prediction_distance": 2.0}


@dataclass
class Timeline:
    """What happened, when (seconds since start, and the day of 2012 being replayed), with numbers."""

    started: float = field(default_factory=time.monotonic)
    day: str = "-"
    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, detail: str = "", **numbers: Any) -> None:
        with self.lock:
            at = time.monotonic() - self.started
            self.events.append({"seconds": round(at, 2), "day": self.day, "what": what, "detail": detail, **numbers})
            print(f"[{at:6.1f} s | {self.day}] {what}{': ' + detail if detail else ''}", flush=True)


@dataclass
class Watch:
    """What the demo has reported so far of the server's retraining loop."""

    loop: Any = None
    states: set[tuple[str, int]] = field(default_factory=set)
    decisions: set[tuple[int, int, int]] = field(default_factory=set)
    gate: dict[str, Any] = field(default_factory=dict)


# -- the world: traffic and labels ---------------------------------------------------------------------------------
def send_day(http: httpx.Client, replica: str, hours: pd.DataFrame) -> dict[str, int]:
    """One request per hour; the request id is the hour's id, so its label can be joined later."""
    served: dict[str, int] = {}
    records = hours[FEATURES].to_dict(orient="records")
    for instant, record in zip(hours["instant"], records, strict=True):
        response = http.post(
            f"{replica}/v1/deployments/{DEPLOYMENT}/predict",
            json={"records": [record]},
            headers={"X-Request-Id": f"hour-{instant}"},
        )
        response.raise_for_status()
        version = response.headers["x-loopml-model-version"]
        served[version] = served.get(version, 0) + 1
    return served


def send_labels(http: httpx.Client, server: str, token: str, hours: pd.DataFrame, warehouse: Path) -> None:
    """The actual rentals of `hours`: to loopml by request id through the REST feedback API, and as a day's
    file to the warehouse the retraining pipeline reads (written whole, then renamed)."""
    day = hours["dteday"].iloc[0].date()
    partial = warehouse / f".{day}.csv.partial"
    hours.to_csv(partial, index=False)
    partial.rename(warehouse / f"{day}.csv")
    pairs = zip(hours["instant"], hours[TARGET], strict=True)
    body = {"feedback": [{"request_id": f"hour-{instant}", "label": int(count)} for instant, count in pairs]}
    response = http.post(f"{server}/api/v1/feedback", json=body, headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()


# -- the gate (the loop waits for it: the policy asks for approval) -------------------------------------------------
def gate(client: lm.Client, warehouse: Path, version: int) -> dict[str, Any]:
    """Score the challenger and the champion on the same rows, the newest labelled week (which the pipeline
    held out of training), with the rule `rmse <= champion`."""
    hours = pd.concat([pd.read_csv(f, parse_dates=["dteday"]) for f in sorted(warehouse.glob("*.csv"))])
    newest = hours["dteday"].max()
    held_out = hours[hours["dteday"] > newest - pd.Timedelta(days=GATE_DAYS)]
    challenger = client.models.load(f"models:/{MODEL}/{version}")
    champion = client.models.load(f"models:/{MODEL}@champion")
    challenger_rmse = float(root_mean_squared_error(held_out[TARGET], challenger.predict(held_out[FEATURES])))
    champion_rmse = float(root_mean_squared_error(held_out[TARGET], champion.predict(held_out[FEATURES])))
    return {
        "rule": "rmse <= champion",
        "rows": len(held_out),
        "first_day": str(held_out["dteday"].min().date()),
        "last_day": str(newest.date()),
        "challenger_rmse": round(challenger_rmse, 2),
        "champion_rmse": round(champion_rmse, 2),
        "passed": challenger_rmse <= champion_rmse,
    }


def follow(client: lm.Client, watch: Watch, timeline: Timeline, warehouse: Path) -> None:
    """Report the newest retraining loop's new states (and canary analyses); gate it when it waits for approval."""
    loops = client.retrain.runs(MODEL, limit=1)
    if not loops:
        return
    loop = watch.loop = loops[0]
    for event in loop.events:
        if (event.state, event.at) in watch.states:
            continue
        watch.states.add((event.state, event.at))
        detail = ", ".join(f"{k} {v}" for k, v in event.detail.items() if not isinstance(v, dict | list))
        timeline.add(f"loop {event.state}", detail[:300], loop=loop.id[:8], server_ms=event.at)
    if loop.state == "awaiting_approval" and not watch.gate:
        assert loop.version is not None
        watch.gate = gate(client, warehouse, loop.version)
        numbers = watch.gate
        timeline.add(
            "gate " + ("passed" if numbers["passed"] else "failed"),
            f"rmse {numbers['challenger_rmse']:.1f} (challenger, version {loop.version}) vs "
            f"{numbers['champion_rmse']:.1f} (champion) on the {numbers['rows']} labelled hours of "
            f"{numbers['first_day']} .. {numbers['last_day']}",
            **numbers,
        )
        if numbers["passed"]:
            client.retrain.approve(loop.id, reason=f"gate passed: {numbers['rule']} on {numbers['rows']} rows")
        else:
            client.retrain.reject(loop.id, reason=f"gate failed: {numbers['rule']} on {numbers['rows']} rows")
    if loop.state == "rolling_out":
        for decision in reversed(client.deployments.decisions(DEPLOYMENT, limit=20)):
            key = (decision.revision, decision.step, decision.time)
            if key not in watch.decisions and decision.time >= loop.created_at:
                watch.decisions.add(key)
                timeline.add("canary analysis", describe(decision))


# -- reading what the server did -------------------------------------------------------------------------------------
def rmse_of(window: Any) -> float | None:
    metrics = (window.performance or {}).get("metrics") or {}
    value = metrics.get("rmse")
    return None if value is None else float(value)


def alert_detail(client: lm.Client, alert: Any) -> tuple[str, float | None]:
    """What the alert saw in its latest window, and the seconds from that window's last request to the alert."""
    windows = {w.start_time: w for w in client.monitors.windows(MONITOR)}
    last = windows.get(alert.last_window)
    if last is None:
        return f"windows {alert.first_window}..{alert.last_window}", None
    detection = max(0.0, (alert.opened_at - last.end_time) / 1000)
    if alert.kind == "metric_drop":
        baselines = (last.performance or {}).get("baselines") or {}
        registration = (baselines.get("registration") or {}).get("metrics") or {}
        then = registration.get("rmse", float("nan"))
        return f"rmse {rmse_of(last) or float('nan'):.1f} in the latest week vs {then:.1f} at registration", detection
    drifted = (last.drift or {}).get("drifted_columns") or []
    return f"{len(drifted)} drifted columns in the latest week: {', '.join(drifted)}", detection


def describe(decision: Any) -> str:
    numbers = decision.metrics or {}
    quality = numbers.get("quality") or {}
    judged = (
        f"{quality['metric']} {quality['candidate']:.1f} vs {quality['stable']:.1f}"
        if quality.get("verdict") in ("pass", "fail")
        else "quality waiting for labels"
    )
    return (
        f"step {decision.step}: {decision.outcome} -> {decision.action}; {judged}, "
        f"p99 {numbers.get('candidate_p99_ms') or 0:.1f} vs {numbers.get('stable_p99_ms') or 0:.1f} ms"
    )


def prepare_home(out: Path) -> Path:
    home = out / "loopml-data"
    if home.exists():
        if not (home / MARKER).is_file():
            raise SystemExit(f"{home} exists and was not made by this demo; choose another --out")
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / MARKER).write_text("made by examples/quickstart/loop.py; replaced on its next run\n")
    return home


def reference_profile(stack: LocalStack, client: lm.Client, out: Path, train: pd.DataFrame) -> None:
    """The champion's reference for monitoring: its training hours and its predictions on them, profiled by
    `loopml data profile` and stored with the version (quickstart registered it without one)."""
    champion = client.models.resolve(f"models:/{MODEL}@champion")
    loaded = client.models.load(f"models:/{MODEL}@champion")
    path = out / "reference.csv"
    train[FEATURES].assign(prediction=loaded.predict(train[FEATURES]), cnt=train[TARGET]).to_csv(path, index=False)
    profile = out / "reference-profile.json"
    subprocess.run(
        [*loopml_command(), "data", "profile", str(path), "--out", str(profile)],
        env=stack.environment(),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    client.monitors.set_reference_profile(MODEL, champion.version, json.loads(profile.read_text()))


PAUSED_STATES = ("triggered", "training", "registered", "evaluating", "gated", "awaiting_approval")
"""While the loop is in one of these the replay waits: in accelerated time a day lasts a fraction of a second,
and a retraining that takes minutes in reality must not take weeks of the replay."""


def replay(
    client: lm.Client,
    stack: LocalStack,
    replica: str,
    hours: pd.DataFrame,
    timeline: Timeline,
    warehouse: Path,
    day_seconds: float,
    deadline_seconds: float,
) -> Watch:
    """Serve 2012 day by day, labels one day late, and report what the server does, until the retraining loop
    ended and (when it succeeded) the new version's first weeks have their labels.

    The replay never runs more than one window ahead of the monitor and stands still while a loop trains or
    waits for its gate (it polls, with a deadline), so the same days fire the same alerts and train on the
    same data on an idle and on a loaded machine."""
    year_2012 = hours[hours["dteday"].dt.year == 2012]
    days = list(year_2012.groupby(year_2012["dteday"].dt.normalize()))
    watch = Watch()
    seen_alerts: set[int] = set()
    deadline = time.monotonic() + deadline_seconds
    sent = 0
    assert stack.server_url is not None
    with httpx.Client(timeout=30) as http:
        for index, (day, day_hours) in enumerate(days):
            tick = time.monotonic()
            timeline.day = str(day.date())
            send_day(http, replica, day_hours)
            sent += len(day_hours)
            if index > 0:  # yesterday's rentals are known today
                send_labels(http, stack.server_url, stack.admin_token, days[index - 1][1], warehouse)
            windows = client.monitors.windows(MONITOR)
            while len(windows) < sent // WINDOW_HOURS - 1 and time.monotonic() < deadline:
                time.sleep(0.1)  # back pressure: let the monitor catch up
                windows = client.monitors.windows(MONITOR)
            for alert in client.monitors.alerts(MONITOR):
                if alert.id not in seen_alerts and alert.state == "open":
                    seen_alerts.add(alert.id)
                    detail, detection = alert_detail(client, alert)
                    if detection is not None:
                        detail += f" ({detection:.1f} s after the window's last request)"
                    timeline.add(f"alert {alert.kind} opened", detail, kind=alert.kind, detection_s=detection)
            follow(client, watch, timeline, warehouse)
            while watch.loop is not None and watch.loop.state in PAUSED_STATES and time.monotonic() < deadline:
                time.sleep(0.2)
                follow(client, watch, timeline, warehouse)
            loop = watch.loop
            if loop is not None and loop.state in ("failed", "rejected"):
                break
            if loop is not None and loop.state == "succeeded":
                judged = [w for w in windows if w.version == loop.version and rmse_of(w) is not None]
                if len(judged) >= WINDOWS_AFTER:
                    break
            if time.monotonic() > deadline:
                timeline.add("deadline reached", f"after {deadline_seconds:.0f} s")
                break
            time.sleep(max(0.0, day_seconds - (time.monotonic() - tick)))
    return watch


def stages(loop: Any) -> dict[str, float]:
    """Seconds spent in each part of the loop, from its transitions' server times."""
    first: dict[str, int] = {}
    for event in loop.events:
        first.setdefault(event.state, event.at)
    end = first.get("succeeded") or first.get("failed") or first.get("rejected") or loop.updated_at
    marks = {
        "detection_s": (loop.context.get("data_end_ms"), first.get("triggered")),  # breaching window -> loop
        "start_s": (first.get("triggered"), first.get("training")),
        "training_s": (first.get("training"), first.get("registered")),  # the pipeline, registration included
        "evaluate_s": (first.get("registered"), first.get("awaiting_approval") or first.get("rolling_out")),
        "gate_s": (first.get("awaiting_approval"), first.get("rolling_out")),  # the demo's gate and approval
        "canary_s": (first.get("rolling_out"), end),  # analysis windows, promotion, champion moved
    }
    return {k: round((b - a) / 1000, 2) for k, (a, b) in marks.items() if a is not None and b is not None}


def summarize(client: lm.Client, first: int, watch: Watch, timeline: Timeline, out: Path) -> bool:
    """Print the monitor's windows and the loop's outcome, write the report and the timeline; True when the loop
    promoted a retrained version and its weekly error is below the champion's in the weeks just before."""
    loop = watch.loop
    windows = sorted(client.monitors.windows(MONITOR), key=lambda w: w.start_time)
    print("\nmonitor windows (a week of requests each; rmse once the labels arrived):")
    for w in windows:
        drifted = (w.drift or {}).get("drifted_columns") or []
        rmse = rmse_of(w)
        breached = ", ".join(kind for kind, hit in sorted(w.breaches.items()) if hit) or "-"
        rmse_text = f"{rmse:6.1f}" if rmse is not None else "   n/a"
        print(f"  v{w.version}  {w.rows:4d} requests  rmse {rmse_text}  drifted {len(drifted):2d}  {breached}")
    client.monitors.report(MONITOR, html=out / "monitor-report.html")
    # The error the loop fixed: the champion's last judged weeks before the new version took over, against the
    # new version's first weeks (neighbouring weeks of 2012, so the season is nearly the same).
    new = loop.version if loop is not None else None
    before = [r for w in windows if w.version == first and (r := rmse_of(w)) is not None][-WINDOWS_AFTER:]
    after = [r for w in windows if new is not None and w.version == new and (r := rmse_of(w)) is not None]
    summary: dict[str, Any] = {
        "loop": None,
        "gate": watch.gate,
        "rmse_before": round(float(np.mean(before)), 2) if before else None,
        "rmse_after": round(float(np.mean(after)), 2) if after else None,
        "weeks_before": len(before),
        "weeks_after": len(after),
    }
    if loop is not None:
        summary["loop"] = {"id": loop.id, "state": loop.state, "version": loop.version, "error": loop.error}
        summary["stages"] = stages(loop)
        print(f"\nloop {loop.id[:8]}: {loop.state}; " + ", ".join(f"{k} {v}" for k, v in summary["stages"].items()))
    succeeded = bool(
        loop is not None and loop.state == "succeeded" and before and after and np.mean(after) < np.mean(before)
    )
    summary["succeeded"] = succeeded
    (out / "timeline.json").write_text(json.dumps({"summary": summary, "events": timeline.events}, indent=2))
    if succeeded:
        print(
            f"loop succeeded: weekly rmse {summary['rmse_before']:.1f} (version {first}, its last {len(before)} "
            f"weeks) -> {summary['rmse_after']:.1f} (retrained version {new}, its first {len(after)} weeks)"
        )
    else:
        print(f"loop did not succeed: {json.dumps(summary)}", file=sys.stderr)
    return succeeded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("loopml-demo"), help="reports, timeline, the store")
    parser.add_argument("--day-seconds", type=float, default=0.25, help="wall time of one replayed day of 2012")
    parser.add_argument("--deadline-seconds", type=float, default=900, help="give up after this long")
    args = parser.parse_args(argv)
    if args.day_seconds <= 0 or args.deadline_seconds <= 0:
        parser.error("--day-seconds and --deadline-seconds must be positive")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    home = prepare_home(out)
    timeline = Timeline()
    hours = pd.read_csv(DATA, parse_dates=["dteday"])

    with LocalStack(home, SERVER_SETTINGS) as stack:
        server = stack.start_server()
        timeline.add("loopml server up", f"{server} (pid {stack.pids[-1]}), store in {home}", pid=stack.pids[-1])
        quickstart = subprocess.run(
            [sys.executable, str(HERE / "quickstart.py")], env=stack.environment(), capture_output=True, text=True
        )
        if quickstart.returncode != 0:
            print(quickstart.stdout, quickstart.stderr, file=sys.stderr)
            return 1
        print("    " + "\n    ".join(quickstart.stdout.strip().splitlines()))
        client = stack.client()
        lm.set_tracking_uri(server, stack.admin_token)
        champion = client.models.resolve(f"models:/{MODEL}@champion")
        validation = champion.metrics.get("rmse", float("nan"))
        timeline.add("champion trained on 2011", f"{champion.uri}, validation rmse {validation:.1f}")
        train_2011 = hours[(hours["dteday"].dt.year == 2011) & (hours["dteday"].dt.month <= 9)]
        reference_profile(stack, client, out, train_2011)
        # The thresholds are the deployment's: every later rollout (the retraining loop's canary) is judged by them.
        client.deployments.deploy(
            DEPLOYMENT, f"{MODEL}@champion", thresholds=CANARY_THRESHOLDS, reason="first deployment"
        )
        replica = stack.start_replica(DEPLOYMENT, seal_seconds=1)
        timeline.add(
            "loopml serve replica up", f"{replica} (pid {stack.pids[-1]}), deployment {DEPLOYMENT}", pid=stack.pids[-1]
        )
        client.monitors.create(
            MONITOR, DEPLOYMENT, window=str(WINDOW_HOURS), label_delay="0s", consecutive=2, model=MODEL,
            kinds=["drift", "metric_drop"],
        )  # fmt: skip
        timeline.add("monitor created", f"windows of {WINDOW_HOURS} requests (a week), alert after 2 breaching")
        warehouse = home / "warehouse"  # the labelled hours the business has: 2011, then each day of 2012
        warehouse.mkdir()
        for day, day_hours in hours[hours["dteday"].dt.year == 2011].groupby("dteday"):
            day_hours.to_csv(warehouse / f"{day.date()}.csv", index=False)
        client.retrain.create(
            MODEL,
            monitor=MONITOR,
            pipeline=f"{HERE / 'retrain_pipeline.py'}:retrain",
            on=["metric-drop:10%x2"],
            rollout="canary",
            canary_steps=CANARY_STEPS,
            analysis_seconds=ANALYSIS_SECONDS,
            cooldown="1d",
            max_loops=1,
            period="7d",
            approval="manual",  # the demo gates the challenger, then approves (or rejects) the rollout
            params={"warehouse": str(warehouse)},
        )
        timeline.add(
            "retraining policy created",
            "on metric-drop:10%x2 (two weeks 10% worse than at registration), pipeline retrain_pipeline.py:retrain, "
            f"canary {' -> '.join(f'{s}%' for s in CANARY_STEPS)}, one loop per day",
        )

        watch = replay(client, stack, replica, hours, timeline, warehouse, args.day_seconds, args.deadline_seconds)
        succeeded = summarize(client, champion.version, watch, timeline, out)
        print(f"report: {out / 'monitor-report.html'}\ntimeline: {out / 'timeline.json'}\nlogs: {home / 'logs'}")
    return 0 if succeeded else 1


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
