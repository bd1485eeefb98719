"""Tracking benchmark (issue 2): loopml against MLflow, side by side in one run, on the same data.

    .venv/bin/python benchmarks/tracking.py            # full run (what `make bench` runs), several minutes
    .venv/bin/python benchmarks/tracking.py --quick    # smoke run, well under a minute of measuring

Scenarios (see benchmarks/README.md for what each side does per request):
1. Ingest N metric points of one run through the SDK to a server: loopml (fluent `run.log_metric`,
   background batches) -> `loopml server`, against MLflow `MlflowClient.log_batch` (1000 metrics per call)
   and against per-call `mlflow.log_metric` -> `mlflow server`, each with one worker process.
2. Embedded ingest (no server): loopml points/s for N points including the final flush.
3. Search over R runs (10 params, 10 metrics each, same seeded values on both sides) over HTTP:
   filter + order by + max 100 results, timed per call after warm-ups.

The MLflow side runs in `.venv-anchors` (benchmarks/anchors/mlflow_tracking.py, one JSON line per call).
Results: a table on stdout and benchmarks/results/tracking.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    SEARCH_EXPERIMENT,
    SEARCH_FILTER,
    SEARCH_MAX_RESULTS,
    SEARCH_ORDER_BY,
    expected_search_names,
    free_port,
    ingest_points,
    run_anchor,
    search_runs_data,
    server,
    summarize,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
ANCHOR_PYTHON = REPO / ".venv-anchors" / "bin" / "python"
ANCHOR_SCRIPT = HERE / "anchors" / "mlflow_tracking.py"
MLFLOW = REPO / ".venv-anchors" / "bin" / "mlflow"
LOOPML = Path(sys.executable).parent / "loopml"
TOKEN = "bench-admin-token-not-a-secret-0123456789"

TARGETS = {
    "ingest_vs_batch": 25.0,
    "ingest_vs_per_call": 200.0,
    "embedded_points_per_s": 200_000.0,
    "search_median_ms": 50.0,
    "search_vs_mlflow": 10.0,
}


# -- processes ---------------------------------------------------------------------------------------


def anchor(*args: str) -> dict[str, Any]:
    """Run one MLflow subcommand in the anchor venv; its last stdout line is the JSON result."""
    return run_anchor(ANCHOR_PYTHON, ANCHOR_SCRIPT, *args)


# -- loopml side -------------------------------------------------------------------------------------


def populate_loopml(home: Path, runs: int) -> float:
    """Fill the embedded store the server will open with the search data (not timed in the results)."""
    from sqlalchemy import event

    import loopml as lm

    client = lm.Client(home=home)
    engine = client.backend.store.engine  # type: ignore[attr-defined]

    # Not timed: skip the fsync of each of its 30,000 commits. The pragma is per connection; the server
    # opens its own connections later, with loopml's settings (synchronous=FULL).
    @event.listens_for(engine, "connect")
    def _no_sync(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    engine.dispose()
    started = time.perf_counter()
    experiment = client.experiments.get_or_create(SEARCH_EXPERIMENT).id
    for name, params, metrics in search_runs_data(runs):
        run = client.runs.create(experiment, name, params=params)
        client.runs.log_metrics(run.id, metrics)
        client.runs.end(run.id)
    client.close()
    return time.perf_counter() - started


def ingest_loopml(points: list[tuple[str, float, int]], experiment: str) -> dict[str, Any]:
    """Fluent SDK: log every point with `run.log_metric`, then flush; the clock covers both."""
    import loopml as lm

    with lm.start_run(experiment=experiment) as run:
        log = run.log_metric
        started = time.perf_counter()
        for key, value, step in points:
            log(key, value, step=step)
        lm.get_client().metrics.flush()
        seconds = time.perf_counter() - started
    stored = len(lm.get_client().runs.history(run.id, "k0")) * 10 if len(points) % 10 == 0 else None
    return {"points": len(points), "seconds": seconds, "points_per_s": len(points) / seconds, "stored": stored}


def repeat_ingest(points: list[tuple[str, float, int]], experiment: str, reps: int) -> dict[str, Any]:
    """`reps` runs of the same ingest (a new run each time); the median run is reported."""
    results = sorted((ingest_loopml(points, experiment) for _ in range(reps)), key=lambda r: r["seconds"])
    median = dict(results[len(results) // 2])
    median["all_seconds"] = [r["seconds"] for r in results]
    return median


def search_loopml(uri: str, runs: int, reps: int, warmups: int) -> dict[str, Any]:
    import loopml as lm

    with lm.Client(uri, token=TOKEN) as client:
        experiment = client.experiments.find(SEARCH_EXPERIMENT).id  # once, as MLflow users pass ids

        def once() -> list[Any]:
            return client.runs.search(
                experiment, filter=SEARCH_FILTER, order_by=SEARCH_ORDER_BY, max_results=SEARCH_MAX_RESULTS
            ).items

        for _ in range(warmups):
            found = once()
        timings = []
        for _ in range(reps):
            started = time.perf_counter()
            found = once()
            timings.append(time.perf_counter() - started)
    names = [run.name for run in found]
    return {
        "timings_s": timings,
        **summarize(timings),
        "returned": len(found),
        "correct": names == expected_search_names(runs),
    }


# -- report ------------------------------------------------------------------------------------------


def rows(loopml: dict[str, Any], mlflow: dict[str, Any]) -> list[dict[str, Any]]:
    ingest, batched, per_call = loopml["ingest"], mlflow["ingest"]["batched"], mlflow["ingest"]["per_call"]
    embedded = loopml["embedded"]
    search_l, search_m = loopml["search"], mlflow["search"]
    points = f"{ingest['points']:,}"
    found = [
        {
            "scenario": f"ingest {points} points to a server: loopml SDK vs MLflow log_batch (points/s)",
            "loopml": ingest["points_per_s"],
            "mlflow": batched["points_per_s"],
            "ratio": ingest["points_per_s"] / batched["points_per_s"],
            "target": f">= {TARGETS['ingest_vs_batch']:.0f}x",
            "pass": ingest["points_per_s"] / batched["points_per_s"] >= TARGETS["ingest_vs_batch"],
        },
        {
            "scenario": f"ingest: loopml SDK vs {per_call['calls']} x mlflow.log_metric (points/s)",
            "loopml": ingest["points_per_s"],
            "mlflow": per_call["points_per_s"],
            "ratio": ingest["points_per_s"] / per_call["points_per_s"],
            "target": f">= {TARGETS['ingest_vs_per_call']:.0f}x",
            "pass": ingest["points_per_s"] / per_call["points_per_s"] >= TARGETS["ingest_vs_per_call"],
        },
        {
            "scenario": f"embedded ingest {points} points incl. flush (points/s)",
            "loopml": embedded["points_per_s"],
            "mlflow": None,
            "ratio": None,
            "target": f">= {TARGETS['embedded_points_per_s']:,.0f}/s",
            "pass": embedded["points_per_s"] >= TARGETS["embedded_points_per_s"],
        },
    ]
    for stat in ("median_ms", "p90_ms"):
        ratio = search_m[stat] / search_l[stat]
        found.append(
            {
                "scenario": f"search {loopml['config']['runs']:,} runs, top {SEARCH_MAX_RESULTS} ({stat[:-3]}, ms)",
                "loopml": search_l[stat],
                "mlflow": search_m[stat],
                "ratio": ratio,
                "target": (
                    f"<= {TARGETS['search_median_ms']:.0f} ms and >= {TARGETS['search_vs_mlflow']:.0f}x"
                    if stat == "median_ms"
                    else "(reported)"
                ),
                "pass": (
                    search_l[stat] <= TARGETS["search_median_ms"] and ratio >= TARGETS["search_vs_mlflow"]
                    if stat == "median_ms"
                    else None
                ),
            }
        )
    return found


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def table(found: list[dict[str, Any]]) -> str:
    lines = ["| scenario | loopml | MLflow | ratio | target | result |", "| --- | ---: | ---: | ---: | --- | --- |"]
    for row in found:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:,.1f}x"
        verdict = {True: "pass", False: "FAIL", None: "-"}[row["pass"]]
        lines.append(
            f"| {row['scenario']} | {_number(row['loopml'])} | {_number(row['mlflow'])} | {ratio} "
            f"| {row['target']} | {verdict} |"
        )
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000, help="metric points per ingest (default 100,000)")
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the search store (default 10,000)")
    parser.add_argument("--per-call", type=int, default=300, help="timed mlflow.log_metric calls (default 300)")
    parser.add_argument("--reps", type=int, default=20, help="timed searches per side (default 20)")
    parser.add_argument("--warmups", type=int, default=2, help="untimed searches first (default 2)")
    parser.add_argument("--ingest-reps", type=int, default=3, help="loopml ingests, median reported (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 points, 500 runs, 30 calls")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores and server logs")
    args = parser.parse_args()
    if args.quick:
        args.points, args.runs, args.per_call, args.reps = 5_000, 500, 30, 5
    for needed in (ANCHOR_PYTHON, MLFLOW, LOOPML):
        if not needed.exists():
            print(f"missing {needed}: run `make install` and `make anchors` first", file=sys.stderr)
            return 2

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tmp").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tracking-", dir=RESULTS / "tmp"))
    config = {k: v for k, v in vars(args).items() if k != "keep"}
    print(f"tracking benchmark: {config}; work dir {work}", flush=True)
    try:
        loopml, mlflow = run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    loopml["config"] = config
    found = rows(loopml, mlflow)
    report = {
        "benchmark": "tracking",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "config": config,
        "loopml": loopml,
        "mlflow": mlflow,
        "rows": found,
    }
    (RESULTS / "tracking.json").write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(found))
    checks = {
        "loopml search correct": loopml["search"]["correct"],
        "MLflow search correct": mlflow["search"]["correct"],
        "loopml stored every point": loopml["ingest"]["stored"] in (None, args.points),
        "MLflow stored every point": mlflow["ingest"]["batched"]["stored"] in (None, args.points),
    }
    print()
    print("checks: " + ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in checks.items()))
    print(f"results: {RESULTS / 'tracking.json'}")
    return 0 if all(checks.values()) else 1


def run(args: argparse.Namespace, work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    import loopml as lm

    loopml_home, mlflow_dir = work / "loopml-home", work / "mlflow"
    mlflow_dir.mkdir()
    mlflow_db = mlflow_dir / "mlflow.db"
    loopml: dict[str, Any] = {}
    mlflow: dict[str, Any] = {}

    # Populate both stores at once (2 cores), before either server starts. Not timed in the results.
    print(f"populating both stores with {args.runs:,} runs ...", flush=True)
    populating = subprocess.Popen(
        [str(ANCHOR_PYTHON), str(ANCHOR_SCRIPT), "populate", "--db", str(mlflow_db), "--artifacts",
         str(mlflow_dir / "artifacts"), "--runs", str(args.runs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        loopml["populate_seconds"] = populate_loopml(loopml_home, args.runs)
        out, err = populating.communicate()
    finally:
        if populating.poll() is None:
            populating.kill()
            populating.wait()
    if populating.returncode != 0:
        raise RuntimeError(f"populating MLflow failed:\n{err[-3000:]}")
    mlflow["populate"] = json.loads(out.strip().splitlines()[-1])
    print(
        f"  populated: loopml {loopml['populate_seconds']:.0f} s, MLflow {mlflow['populate']['seconds']:.0f} s",
        flush=True,
    )

    loopml_port, mlflow_port = free_port(), free_port()
    loopml_uri, mlflow_uri = f"http://127.0.0.1:{loopml_port}", f"http://127.0.0.1:{mlflow_port}"
    loopml_cmd = [str(LOOPML), "server", "--host", "127.0.0.1", "--port", str(loopml_port)]
    mlflow_cmd = [
        str(MLFLOW), "server",
        "--backend-store-uri", f"sqlite:///{mlflow_db}",
        "--default-artifact-root", (mlflow_dir / "artifacts").as_uri(),
        "--host", "127.0.0.1", "--port", str(mlflow_port),
        "--workers", "1",
    ]  # fmt: skip
    loopml_env = {"LOOPML_HOME": str(loopml_home), "LOOPML_ADMIN_TOKEN": TOKEN}
    mlflow_env: dict[str, str] = {}
    with (
        server("loopml server", loopml_cmd, f"{loopml_uri}/api/v1/health", loopml_env, work / "loopml.log") as lt,
        server("mlflow server", mlflow_cmd, f"{mlflow_uri}/health", mlflow_env, work / "mlflow.log") as mt,
    ):
        loopml["server"] = {"command": loopml_cmd[1:], "workers": 1, "ready_seconds": lt}
        mlflow["server"] = {"command": mlflow_cmd[1:], "workers": 1, "ready_seconds": mt}
        points = ingest_points(args.points)

        print(f"1. ingest {args.points:,} points to a server ...", flush=True)
        lm.set_tracking_uri(loopml_uri, token=TOKEN)
        loopml["ingest"] = repeat_ingest(points, "ingest", args.ingest_reps)
        mlflow["ingest"] = anchor(
            "ingest", "--uri", mlflow_uri, "--points", str(args.points), "--per-call", str(args.per_call)
        )
        lm.set_tracking_uri(None)

        print(f"2. embedded ingest {args.points:,} points ...", flush=True)
        lm.set_tracking_uri(str(work / "embedded-home"))
        loopml["embedded"] = repeat_ingest(points, "ingest", args.ingest_reps)
        lm.set_tracking_uri(None)

        print(f"3. search {args.runs:,} runs, {args.reps} timed calls per side ...", flush=True)
        loopml["search"] = search_loopml(loopml_uri, args.runs, args.reps, args.warmups)
        mlflow["search"] = anchor(
            "search", "--uri", mlflow_uri, "--runs", str(args.runs), "--reps", str(args.reps),
            "--warmups", str(args.warmups),
        )  # fmt: skip
    return loopml, mlflow


if __name__ == "__main__":
    sys.exit(main())
