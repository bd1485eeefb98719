"""Tracking benchmark (issues 2 and 10): loopml against MLflow, side by side in one run, as curves over sizes.

    .venv/bin/python benchmarks/tracking.py            # full run (what `make bench` runs), about an hour
    .venv/bin/python benchmarks/tracking.py --quick    # smoke run, a few minutes
    .venv/bin/python benchmarks/tracking.py --ingest-sizes 1e4,1e5 --search-sizes 1e3,1e4

Scenarios (see benchmarks/README.md for what each side does per request), at every size both sides run:
1. Ingest N metric points of one run (10 keys) through the SDK to a server: loopml (fluent `run.log_metric`,
   background batches) -> `loopml server`, against MLflow `MlflowClient.log_batch` (1000 metrics per call)
   -> `mlflow server`, each with one worker process; per-call `mlflow.log_metric` once, at one size.
2. Metric history: read back one key of each ingest run (N/10 points) on both sides, and on loopml a
   one-key run of N points (the 1,000,000-point read has a target of its own).
3. Embedded ingest (no server): loopml points/s for N points including the final flush.
4. Search over R runs (10 params, 10 metrics each, same seeded values on both sides) over HTTP:
   filter + order by + max 100 results, timed per call after warm-ups. The stores grow from one size to
   the next; both servers are restarted on them at each size.

The MLflow side runs in `.venv-anchors` (benchmarks/anchors/mlflow_tracking.py, one JSON line per call).
Results: tables on stdout, benchmarks/results/tracking.json, and the curves as SVG in docs/benchmarks/.
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
    parse_sizes,
    run_anchor,
    search_runs_data,
    server,
    summarize,
)
from _plot import line_plot

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
PLOTS = REPO / "docs" / "benchmarks"
ANCHOR_PYTHON = REPO / ".venv-anchors" / "bin" / "python"
ANCHOR_SCRIPT = HERE / "anchors" / "mlflow_tracking.py"
MLFLOW = REPO / ".venv-anchors" / "bin" / "mlflow"
LOOPML = Path(sys.executable).parent / "loopml"
TOKEN = "bench-admin-token-not-a-secret-0123456789"

TARGETS = {
    "ingest_vs_batch": 50.0,
    "ingest_vs_per_call": 200.0,
    "embedded_points_per_s": 200_000.0,
    "history_ms": 200.0,
    "history_points": 1_000_000,
    "search_median_ms": 100.0,
    "search_target_runs": 100_000,
    "search_vs_mlflow": 30.0,
}
INGEST_SIZES = "1e4,1e5,1e6"
SEARCH_SIZES = "1e3,1e4,1e5"


# -- processes ---------------------------------------------------------------------------------------


def anchor(*args: str) -> dict[str, Any]:
    """Run one MLflow subcommand in the anchor venv; its last stdout line is the JSON result."""
    return run_anchor(ANCHOR_PYTHON, ANCHOR_SCRIPT, *args)


def loopml_server(home: Path, log: Path) -> tuple[str, list[str], Any]:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    command = [str(LOOPML), "server", "--host", "127.0.0.1", "--port", str(port)]
    env = {"LOOPML_HOME": str(home), "LOOPML_ADMIN_TOKEN": TOKEN}
    return uri, command, server("loopml server", command, f"{uri}/api/v1/health", env, log)


def mlflow_server(directory: Path, log: Path) -> tuple[str, list[str], Any]:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    command = [
        str(MLFLOW), "server",
        "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
        "--default-artifact-root", (directory / "artifacts").as_uri(),
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    return uri, command, server("mlflow server", command, f"{uri}/health", {}, log)


# -- loopml side -------------------------------------------------------------------------------------


def populate_loopml(home: Path, runs: int, start: int) -> float:
    """Grow the embedded store the server will open from `start` to `runs` runs (not timed in the results).

    The experiment is made through the client; the runs are then written as the store's own rows, 1,000 runs
    per transaction: the `runs`, `params`, `metric_chunks` and `latest_metrics` rows that `runs.create` +
    `runs.log_metrics` + `runs.end` write, without the audit rows (search never reads them) and without three
    transactions per run (100,000 runs that way take most of an hour). MLflow's side is filled the same way.
    """
    import numpy as np
    from sqlalchemy import event, insert

    import loopml as lm
    from loopml.store.schema import latest_metrics, metric_chunks, params
    from loopml.store.schema import runs as runs_table

    client = lm.Client(home=home)
    store = client.backend.store  # type: ignore[attr-defined]

    # Not timed: skip fsync. The pragma is per connection; the server opens its own connections later, with
    # loopml's settings (synchronous=FULL).
    @event.listens_for(store.engine, "connect")
    def _no_sync(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    store.engine.dispose()
    started = time.perf_counter()
    experiment = client.experiments.get_or_create(SEARCH_EXPERIMENT).id
    now = int(time.time() * 1000)
    tables: dict[Any, list[dict[str, Any]]] = {runs_table: [], params: [], metric_chunks: [], latest_metrics: []}

    def flush() -> None:
        with store.engine.begin() as conn:
            for table, batch in tables.items():
                if batch:
                    conn.execute(insert(table), batch)
                batch.clear()

    zero, stamp = np.zeros(1, "<i8").tobytes(), np.full(1, now, "<i8").tobytes()
    for index, (name, run_params, metrics) in enumerate(search_runs_data(runs, start=start), start=start):
        run_id = os.urandom(16).hex()
        tables[runs_table].append(
            {
                "id": run_id, "experiment_id": experiment, "name": name, "status": "FINISHED",
                "start_time": now + index, "end_time": now + index, "parent_run_id": None,
            }
        )  # fmt: skip
        tables[params].extend({"run_id": run_id, "key": k, "value": v} for k, v in run_params.items())
        for key, value in metrics.items():
            tables[metric_chunks].append(
                {
                    "run_id": run_id, "key": key, "count": 1, "min_step": 0, "max_step": 0, "steps": zero,
                    "timestamps": stamp, "values": np.full(1, value, "<f8").tobytes(),
                }
            )  # fmt: skip
            tables[latest_metrics].append(
                {"run_id": run_id, "key": key, "value": value, "is_nan": False, "step": 0, "timestamp": now}
            )
        if len(tables[runs_table]) == 1000:
            flush()
    flush()
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
    return {
        "run_id": run.id,
        "points": len(points),
        "seconds": seconds,
        "points_per_s": len(points) / seconds,
        "stored": stored,
    }


def repeat_ingest(points: list[tuple[str, float, int]], experiment: str, reps: int) -> dict[str, Any]:
    """`reps` runs of the same ingest (a new run each time); the median run is reported."""
    results = sorted((ingest_loopml(points, experiment) for _ in range(reps)), key=lambda r: r["seconds"])
    median = dict(results[len(results) // 2])
    median["all_seconds"] = [r["seconds"] for r in results]
    return median


def history_loopml(run_id: str, key: str, reps: int = 3) -> dict[str, Any]:
    """Read the whole history of one key back through the SDK, `reps` times; median and p90."""
    import loopml as lm

    client = lm.get_client()
    timings = []
    for _ in range(reps):
        started = time.perf_counter()
        history = client.runs.history(run_id, key)
        timings.append(time.perf_counter() - started)
    return {"points": len(history), **summarize(timings)}


def one_key_run(count: int) -> str:
    """A run with `count` points of one key (`k0`), logged through the SDK (not timed)."""
    import loopml as lm

    with lm.start_run(experiment="history") as run:
        log = run.log_metric
        for key, value, step in ingest_points(count, keys=1):
            log(key, value, step=step)
        lm.get_client().metrics.flush()
    return run.id


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


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    per_call = None
    for point in result["ingest"]:
        size, mine, theirs = point["points"], point["loopml"], point["mlflow"]
        ratio = mine["points_per_s"] / theirs["batched"]["points_per_s"]
        capped = theirs["batched"]["points"] < size
        found.append(
            {
                "scenario": f"ingest {size:,} points to a server: loopml SDK vs MLflow log_batch (points/s)"
                + (f" [MLflow: its rate over the first {theirs['batched']['points']:,}]" if capped else ""),
                "loopml": mine["points_per_s"],
                "mlflow": theirs["batched"]["points_per_s"],
                "ratio": ratio,
                "target": f">= {TARGETS['ingest_vs_batch']:.0f}x",
                "pass": ratio >= TARGETS["ingest_vs_batch"],
            }
        )
        per_call = per_call or (theirs.get("per_call") and (mine, theirs["per_call"]))
    if per_call:
        mine, theirs = per_call
        found.append(
            {
                "scenario": f"ingest {mine['points']:,} points: loopml SDK vs {theirs['calls']} x mlflow.log_metric "
                "(points/s)",
                "loopml": mine["points_per_s"],
                "mlflow": theirs["points_per_s"],
                "ratio": mine["points_per_s"] / theirs["points_per_s"],
                "target": f">= {TARGETS['ingest_vs_per_call']:.0f}x",
                "pass": mine["points_per_s"] / theirs["points_per_s"] >= TARGETS["ingest_vs_per_call"],
            }
        )
    theirs_by_points = {p["mlflow"]["history"]["points"]: p["mlflow"]["history"] for p in result["ingest"]}
    for point in result["ingest"]:
        one_key = point["history_one_key"]
        theirs = theirs_by_points.get(one_key["points"])
        at_target = one_key["points"] >= TARGETS["history_points"]
        found.append(
            {
                "scenario": f"history of one key, {one_key['points']:,} points, read through the SDK (median, ms)",
                "loopml": one_key["median_ms"],
                "mlflow": None if theirs is None else theirs["median_ms"],
                "ratio": None if theirs is None else theirs["median_ms"] / one_key["median_ms"],
                "target": f"<= {TARGETS['history_ms']:.0f} ms" if at_target else "(reported)",
                "pass": one_key["median_ms"] <= TARGETS["history_ms"] if at_target else None,
            }
        )
    for point in result["ingest"]:
        embedded = point["embedded"]
        found.append(
            {
                "scenario": f"embedded ingest {point['points']:,} points incl. flush (points/s)",
                "loopml": embedded["points_per_s"],
                "mlflow": None,
                "ratio": None,
                "target": f">= {TARGETS['embedded_points_per_s']:,.0f}/s",
                "pass": embedded["points_per_s"] >= TARGETS["embedded_points_per_s"],
            }
        )
    for point in result["search"]:
        runs, mine, theirs = point["runs"], point["loopml"], point["mlflow"]
        for stat in ("median_ms", "p90_ms"):
            ratio = theirs[stat] / mine[stat]
            absolute = stat == "median_ms" and runs >= TARGETS["search_target_runs"]
            target = f">= {TARGETS['search_vs_mlflow']:.0f}x"
            passed = ratio >= TARGETS["search_vs_mlflow"]
            if absolute:
                target = f"<= {TARGETS['search_median_ms']:.0f} ms and {target}"
                passed = passed and mine[stat] <= TARGETS["search_median_ms"]
            found.append(
                {
                    "scenario": f"search {runs:,} runs, top {SEARCH_MAX_RESULTS} ({stat[:-3]}, ms)",
                    "loopml": mine[stat],
                    "mlflow": theirs[stat],
                    "ratio": ratio,
                    "target": target,
                    "pass": passed,
                }
            )
    return found


def plots(result: dict[str, Any], directory: Path) -> list[Path]:
    """The curves, one SVG each; returns the files written."""
    written = []
    ingest, search = result["ingest"], result["search"]
    if ingest:
        path = directory / "tracking-ingest.svg"
        line_plot(
            path,
            "Ingest to a server, one run (points/s)",
            "points logged",
            "points per second",
            {
                "loopml SDK": [(p["points"], p["loopml"]["points_per_s"]) for p in ingest],
                "MLflow log_batch": [(p["points"], p["mlflow"]["batched"]["points_per_s"]) for p in ingest],
                "loopml embedded": [(p["points"], p["embedded"]["points_per_s"]) for p in ingest],
            },
            log_x=True,
            log_y=True,
        )
        written.append(path)
        path = directory / "tracking-history.svg"
        line_plot(
            path,
            "Read the history of one metric key (median ms)",
            "points in the key",
            "milliseconds",
            {
                "loopml": sorted(
                    [(p["history_one_key"]["points"], p["history_one_key"]["median_ms"]) for p in ingest]
                    + [(p["history_k0"]["points"], p["history_k0"]["median_ms"]) for p in ingest]
                ),
                "MLflow": [(p["mlflow"]["history"]["points"], p["mlflow"]["history"]["median_ms"]) for p in ingest],
                "target": [(1_000, TARGETS["history_ms"]), (TARGETS["history_points"], TARGETS["history_ms"])],
            },
            log_x=True,
            log_y=True,
        )
        written.append(path)
    if search:
        path = directory / "tracking-search.svg"
        line_plot(
            path,
            f"Search runs, filter + order by, top {SEARCH_MAX_RESULTS} (ms)",
            "runs in the experiment",
            "milliseconds",
            {
                "loopml median": [(p["runs"], p["loopml"]["median_ms"]) for p in search],
                "loopml p90": [(p["runs"], p["loopml"]["p90_ms"]) for p in search],
                "MLflow median": [(p["runs"], p["mlflow"]["median_ms"]) for p in search],
                "MLflow p90": [(p["runs"], p["mlflow"]["p90_ms"]) for p in search],
            },
            log_x=True,
            log_y=True,
        )
        written.append(path)
    return written


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
    parser.add_argument("--ingest-sizes", default=INGEST_SIZES, help=f"points per ingest (default {INGEST_SIZES})")
    parser.add_argument("--search-sizes", default=SEARCH_SIZES, help=f"runs to search (default {SEARCH_SIZES})")
    parser.add_argument(
        "--sizes", help="both at once: INGEST/SEARCH, e.g. 1e4,1e5/1e3,1e4 (an empty side skips that scenario)"
    )
    parser.add_argument("--per-call", type=int, default=300, help="timed mlflow.log_metric calls (default 300)")
    parser.add_argument("--reps", type=int, default=20, help="timed loopml searches per size (default 20)")
    parser.add_argument("--anchor-reps", type=int, default=10, help="timed MLflow searches per size (default 10)")
    parser.add_argument("--warmups", type=int, default=2, help="untimed searches first (default 2)")
    parser.add_argument(
        "--anchor-max-points",
        type=int,
        help="MLflow logs at most this many of each size's points (its rate over them is compared; for a "
        "loaded machine where its full 1,000,000-point ingest would take hours); default: all",
    )
    parser.add_argument("--ingest-reps", type=int, default=3, help="loopml ingests, median reported (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: ingest 1e3,1e4 points, search 500,2000 runs")
    parser.add_argument("--plots", type=Path, default=PLOTS, help=f"where the SVG curves go (default {PLOTS})")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores and server logs")
    args = parser.parse_args()
    if args.sizes is not None:
        if "/" not in args.sizes:
            parser.error("--sizes takes INGEST/SEARCH, e.g. 1e4,1e5/1e3,1e4")
        args.ingest_sizes, args.search_sizes = args.sizes.split("/", 1)
    if args.quick:
        args.ingest_sizes, args.search_sizes, args.per_call = "1e3,1e4", "500,2000", 30
        args.reps = args.anchor_reps = 5
        args.plots = RESULTS / "plots"
    ingest_sizes = parse_sizes(args.ingest_sizes) if args.ingest_sizes.strip() else []
    search_sizes = parse_sizes(args.search_sizes) if args.search_sizes.strip() else []
    for needed in (ANCHOR_PYTHON, MLFLOW, LOOPML):
        if not needed.exists():
            print(f"missing {needed}: run `make install` and `make anchors` first", file=sys.stderr)
            return 2

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tmp").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tracking-", dir=RESULTS / "tmp"))
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "keep"}
    config.update(ingest_sizes=ingest_sizes, search_sizes=search_sizes)
    print(f"tracking benchmark: {config}; work dir {work}", flush=True)
    result: dict[str, Any] = {"ingest": [], "search": []}
    try:
        if ingest_sizes:
            run_ingest(args, ingest_sizes, work, result)
        if search_sizes:
            run_search(args, search_sizes, work, result)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    found = rows(result)
    written = plots(result, args.plots)
    report = {
        "benchmark": "tracking",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "load_average": os.getloadavg(),
        "config": config,
        "targets": TARGETS,
        **result,
        "rows": found,
    }
    (RESULTS / "tracking.json").write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(found))
    checks = {}
    for point in result["ingest"]:
        size = point["points"]
        checks[f"loopml stored all {size:,} points"] = point["loopml"]["stored"] in (None, size)
        logged = point["mlflow"]["batched"]["points"]
        checks[f"MLflow stored all {logged:,} points"] = point["mlflow"]["batched"]["stored"] in (None, logged)
        checks[f"loopml one-key history has {size:,} points"] = point["history_one_key"]["points"] == size
    for point in result["search"]:
        checks[f"loopml search of {point['runs']:,} correct"] = point["loopml"]["correct"]
        checks[f"MLflow search of {point['runs']:,} correct"] = point["mlflow"]["correct"]
    print()
    print("checks: " + ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in checks.items()))
    print(f"plots: {', '.join(str(p) for p in written)}")
    print(f"results: {RESULTS / 'tracking.json'}")
    return 0 if all(checks.values()) else 1


def run_ingest(args: argparse.Namespace, sizes: list[int], work: Path, result: dict[str, Any]) -> None:
    """Ingest curve on one pair of fresh servers: at each size both sides log the same points."""
    import loopml as lm

    loopml_home, mlflow_dir = work / "ingest-loopml", work / "ingest-mlflow"
    mlflow_dir.mkdir()
    loopml_uri, loopml_cmd, loopml_running = loopml_server(loopml_home, work / "ingest-loopml.log")
    mlflow_uri, mlflow_cmd, mlflow_running = mlflow_server(mlflow_dir, work / "ingest-mlflow.log")
    with loopml_running as lt, mlflow_running as mt:
        result["ingest_servers"] = {
            "loopml": {"command": loopml_cmd[1:], "workers": 1, "ready_seconds": lt},
            "mlflow": {"command": mlflow_cmd[1:], "workers": 1, "ready_seconds": mt},
        }
        for index, size in enumerate(sizes):
            points = ingest_points(size)
            print(f"ingest {size:,} points to a server ...", flush=True)
            lm.set_tracking_uri(loopml_uri, token=TOKEN)
            mine = repeat_ingest(points, "ingest", args.ingest_reps)
            history_k0 = history_loopml(mine["run_id"], "k0")
            history_one_key = history_loopml(one_key_run(size), "k0")
            lm.set_tracking_uri(None)
            per_call = args.per_call if index == len(sizes) // 2 else 0  # once, at the middle size
            theirs_points = size if args.anchor_max_points is None else min(size, args.anchor_max_points)
            theirs = anchor("ingest", "--uri", mlflow_uri, "--points", str(theirs_points), "--per-call", str(per_call))
            print(f"embedded ingest {size:,} points ...", flush=True)
            lm.set_tracking_uri(str(work / f"embedded-{size}"))
            embedded = repeat_ingest(points, "ingest", args.ingest_reps)
            lm.set_tracking_uri(None)
            shutil.rmtree(work / f"embedded-{size}", ignore_errors=True)
            result["ingest"].append(
                {
                    "points": size,
                    "loopml": mine,
                    "mlflow": theirs,
                    "embedded": embedded,
                    "history_k0": history_k0,
                    "history_one_key": history_one_key,
                }
            )
            ratio = mine["points_per_s"] / theirs["batched"]["points_per_s"]
            print(
                f"  loopml {mine['points_per_s']:,.0f}/s, MLflow {theirs['batched']['points_per_s']:,.0f}/s "
                f"({ratio:.1f}x); history of {size:,} points {history_one_key['median_ms']:.0f} ms",
                flush=True,
            )


def run_search(args: argparse.Namespace, sizes: list[int], work: Path, result: dict[str, Any]) -> None:
    """Search curve: the two stores grow size by size; both servers restart on them at each size."""
    loopml_home, mlflow_dir = work / "search-loopml", work / "search-mlflow"
    mlflow_dir.mkdir()
    have = 0
    for size in sizes:
        print(f"populating both stores from {have:,} to {size:,} runs ...", flush=True)
        populating = subprocess.Popen(
            [str(ANCHOR_PYTHON), str(ANCHOR_SCRIPT), "populate", "--db", str(mlflow_dir / "mlflow.db"),
             "--artifacts", str(mlflow_dir / "artifacts"), "--runs", str(size), "--start", str(have)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            loopml_seconds = populate_loopml(loopml_home, size, have)
            out, err = populating.communicate()
        finally:
            if populating.poll() is None:
                populating.kill()
                populating.wait()
        if populating.returncode != 0:
            raise RuntimeError(f"populating MLflow failed:\n{err[-3000:]}")
        mlflow_seconds = json.loads(out.strip().splitlines()[-1])["seconds"]
        print(f"  populated: loopml {loopml_seconds:.0f} s, MLflow {mlflow_seconds:.0f} s", flush=True)
        have = size
        loopml_uri, _, loopml_running = loopml_server(loopml_home, work / f"search-loopml-{size}.log")
        mlflow_uri, _, mlflow_running = mlflow_server(mlflow_dir, work / f"search-mlflow-{size}.log")
        with loopml_running, mlflow_running:
            print(f"search {size:,} runs ...", flush=True)
            mine = search_loopml(loopml_uri, size, args.reps, args.warmups)
            theirs = anchor(
                "search", "--uri", mlflow_uri, "--runs", str(size), "--reps", str(args.anchor_reps),
                "--warmups", str(args.warmups),
            )  # fmt: skip
        result["search"].append(
            {
                "runs": size,
                "populate_seconds": {"loopml": loopml_seconds, "mlflow": mlflow_seconds},
                "loopml": mine,
                "mlflow": theirs,
            }
        )
        print(
            f"  loopml median {mine['median_ms']:.1f} ms, MLflow {theirs['median_ms']:.0f} ms "
            f"({theirs['median_ms'] / mine['median_ms']:.1f}x)",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
