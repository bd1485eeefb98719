"""Serving curves (issue 10): loopml's replica beside two reference apps, 1 and 2 workers x 1, 16, 64 connections.

    .venv/bin/python benchmarks/serving_curve.py                       # 6 points, 3 alternating rounds of 5 s
    .venv/bin/python benchmarks/serving_curve.py --before /tmp/old/src # also a loopml from another tree
    .venv/bin/python benchmarks/serving_curve.py --quick               # smoke run: 2 s, 1 round

Every side runs on the same stack: uvicorn with uvloop and httptools, `--workers N`, access log off.
- **echo** (benchmarks/reference_apps/echo.py): reads the body, parses it with orjson, answers a constant
  prediction. The HTTP + JSON ceiling of Python serving.
- **bare** (benchmarks/reference_apps/bare.py): the predictor loopml serves with (`load_serving_model`: the
  compiled-trees predict), called once per request on the event loop; no validation, batching, log, metrics.
- **loopml**: `loopml serve --model-dir DIR --name bike --workers N`, everything on (signature checks,
  micro-batching, Prometheus metrics, request ids), from this tree (`src/`).
- **loopml before** (with `--before SRC`): the same command on another source tree (say, the commit before a
  change: `git worktree add /tmp/old <commit>` then `--before /tmp/old/src`), so a change is measured
  against its base in one run.

The model is serving.py's: HistGradientBoostingRegressor(random_state=0) on the Bike Sharing hourly features;
the request is one record (benchmarks/wrk/native.lua; echo and bare answer the same body).

The machine has 2 cores and the load generator needs one: wrk (`-t1`) is pinned to CPU 1; with 1 worker the
server is pinned to CPU 0, with 2 workers its first worker process to CPU 0 and its second to CPU 1, where it
shares the core with wrk (every side alike). At each point the sides alternate, the order flipping each
round, and the medians are compared: loopml/echo and loopml/bare (and loopml/before) per point, printed,
written to benchmarks/results/serving_curve.json, and drawn as SVG plots under docs/benchmarks/.
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
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _common import BIKE_CSV, BIKE_FEATURES, BIKE_TARGET, SERVING_DEPLOYMENT, SERVING_RANDOM_STATE, bike_row, free_port
from _common import server as _common_server
from _plot import line_plot

from serving import _session_pids, median, post, server_cpu_seconds, wrk

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
PLOTS = REPO / "docs" / "benchmarks"
PYTHON = Path(sys.executable)
LOOPML = PYTHON.parent / "loopml"
SERVER_CPUS = {1: "0", 2: "0,1"}
TARGET_OF_ECHO = 0.5


def uvicorn_command(app: str, port: int, workers: int) -> list[str]:
    return [
        str(PYTHON),
        "-m",
        "uvicorn",
        "--app-dir",
        str(HERE),
        app,
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--workers",
        str(workers),
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def loopml_command(model_dir: Path, port: int, workers: int) -> list[str]:
    return [
        str(LOOPML),
        "serve",
        "--model-dir",
        str(model_dir),
        "--name",
        SERVING_DEPLOYMENT,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def build_model(work: Path) -> tuple[Path, float]:
    """serving.py's model, saved as a loopml package; its prediction for the benchmark's row."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingRegressor

    from loopml.registry import save_model

    frame = pd.read_csv(REPO / BIKE_CSV)
    model = HistGradientBoostingRegressor(random_state=SERVING_RANDOM_STATE).fit(
        frame[BIKE_FEATURES], frame[BIKE_TARGET]
    )
    directory = work / SERVING_DEPLOYMENT
    save_model(model, directory, input_example=frame[BIKE_FEATURES][:5])
    return directory, float(model.predict(pd.DataFrame([bike_row(str(REPO / BIKE_CSV))]))[0])


def sides(args: argparse.Namespace, model_dir: Path, workers: int) -> dict[str, tuple[list[str], dict[str, str], int]]:
    """name -> (command, environment, port) of every server at one worker count."""
    found: dict[str, tuple[list[str], dict[str, str], int]] = {}
    port = free_port()
    found["echo"] = (uvicorn_command("reference_apps.echo:app", port, workers), {}, port)
    port = free_port()
    bare_env = {"BARE_MODEL_DIR": str(model_dir), "PYTHONPATH": str(REPO / "src")}
    found["bare"] = (uvicorn_command("reference_apps.bare:app", port, workers), bare_env, port)
    port = free_port()
    found["loopml"] = (loopml_command(model_dir, port, workers), {"PYTHONPATH": str(REPO / "src")}, port)
    if args.before:
        port = free_port()
        found["loopml before"] = (loopml_command(model_dir, port, workers), {"PYTHONPATH": args.before}, port)
    return found


def pin_workers(url: str, cpus: str) -> dict[int, str]:
    """Pin each worker process of the server at `url` to one CPU of `cpus`, in turn (all its threads).

    With 2 workers on 2 shared CPUs the kernel may otherwise run both on one CPU for a while: two identical
    servers measured in turn differed by up to 1.45x. uvicorn's workers are `multiprocessing` spawns; a
    single-worker server is one process, pinned to its one CPU already."""
    choices = cpus.split(",")
    if len(choices) < 2:
        return {}
    workers = sorted(pid for pid in _session_pids(url) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes())
    pinned = {}
    for index, pid in enumerate(workers):
        cpu = choices[index % len(choices)]
        subprocess.run(["taskset", "-a", "-p", "-c", cpu, str(pid)], check=True, capture_output=True)
        pinned[pid] = cpu
    return pinned


def measure_point(
    urls: dict[str, str], connections: int, rounds: int, seconds: float, label: str
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
    names = list(urls)
    for index in range(rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            cpu_before = server_cpu_seconds(urls[name])
            result = wrk(urls[name], "native.lua", connections, seconds)
            result["cpu_us_per_request"] = (
                (server_cpu_seconds(urls[name]) - cpu_before) / max(result["requests"], 1) * 1e6
            )
            out[name].append(result)
            print(
                f"  {label} round {index + 1}/{rounds} {name:<14} {result['rps']:>9,.0f} req/s  "
                f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms  "
                f"cpu {result['cpu_us_per_request']:6.1f} us/req  failed {result['failed']}",
                flush=True,
            )
    return out


def run(args: argparse.Namespace, work: Path, report: dict[str, Any]) -> None:
    model_dir, expected = build_model(work)
    report["expected_prediction"] = expected
    report["points"] = []
    report["answers"] = {}
    for workers in args.workers:
        servers = sides(args, model_dir, workers)
        cpus = SERVER_CPUS.get(workers, "0,1")
        print(f"workers={workers}: starting {', '.join(servers)} (servers on CPUs {cpus}, wrk on CPU 1)", flush=True)
        with ExitStack() as stack:
            urls = {}
            for name, (command, env, port) in servers.items():
                url = f"http://127.0.0.1:{port}"
                home = {"LOOPML_HOME": str(work / f"home-{name.replace(' ', '-')}-{workers}")}
                stack.enter_context(
                    _common_server(
                        name,
                        command,
                        f"{url}/health",
                        {**env, **home},
                        work / f"{name.replace(' ', '-')}-{workers}.log",
                        prefix=("taskset", "-c", cpus),
                        timeout=180.0,
                    )
                )
                urls[name] = url
                report.setdefault("worker_cpus", {})[f"{name} w{workers}"] = pin_workers(url, cpus)
            row = {"records": [bike_row(str(REPO / BIKE_CSV))]}
            for name, url in urls.items():
                answer = post(f"{url}/v1/deployments/{SERVING_DEPLOYMENT}/predict", row)
                report["answers"][f"{name} w{workers}"] = answer["predictions"][0]
            for url in urls.values():
                wrk(url, "native.lua", 16, args.warmup)
            for connections in args.connections:
                label = f"w{workers} c{connections}"
                runs = measure_point(urls, connections, args.rounds, args.seconds, label)
                point: dict[str, Any] = {"workers": workers, "connections": connections, "runs": runs}
                point["rps"] = {name: median(results, "rps") for name, results in runs.items()}
                point["p99_ms"] = {name: median(results, "p99_ms") for name, results in runs.items()}
                point["cpu_us_per_request"] = {
                    name: median(results, "cpu_us_per_request") for name, results in runs.items()
                }
                report["points"].append(point)


def ratios(point: dict[str, Any]) -> dict[str, float]:
    rps = point["rps"]
    found = {"loopml/echo": rps["loopml"] / rps["echo"], "loopml/bare": rps["loopml"] / rps["bare"]}
    if "loopml before" in rps:
        found["loopml/before"] = rps["loopml"] / rps["loopml before"]
    return found


def table(report: dict[str, Any]) -> str:
    names = list(report["points"][0]["rps"])
    header = ["workers", "connections", *[f"{n} (req/s)" for n in names], "loopml/echo", "loopml/bare"]
    if "loopml before" in names:
        header.append("loopml/before")
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---:"] * len(header)) + " |"]
    for point in report["points"]:
        cells = [str(point["workers"]), str(point["connections"])]
        cells += [f"{point['rps'][n]:,.0f}" for n in names]
        cells += [f"{value:.2f}" for value in ratios(point).values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plots(report: dict[str, Any]) -> list[Path]:
    """Requests/s against connections, one plot per worker count; and each side's scaling from 1 to N workers."""
    written = []
    points = report["points"]
    names = list(points[0]["rps"])
    for workers in sorted({p["workers"] for p in points}):
        mine = [p for p in points if p["workers"] == workers]
        path = PLOTS / f"serving-curve-w{workers}.svg"
        line_plot(
            path,
            f"Serving, {workers} worker{'s' if workers > 1 else ''} (2-core machine)",
            "connections (wrk -t1)",
            "requests/s",
            {name: [(p["connections"], p["rps"][name]) for p in mine] for name in names},
            log_x=True,
        )
        written.append(path)
        path = PLOTS / f"serving-cpu-w{workers}.svg"
        line_plot(
            path,
            f"Server CPU per request, {workers} worker{'s' if workers > 1 else ''} (lower is better)",
            "connections (wrk -t1)",
            "CPU µs per request",
            {name: [(p["connections"], p["cpu_us_per_request"][name]) for p in mine] for name in names},
            log_x=True,
        )
        written.append(path)
    counts = sorted({p["workers"] for p in points})
    if len(counts) > 1:
        top = max(p["connections"] for p in points)
        at_top = {p["workers"]: p for p in points if p["connections"] == top}
        path = PLOTS / "serving-curve-scaling.svg"
        line_plot(
            path,
            f"Scaling with workers at {top} connections (throughput / 1 worker's)",
            "workers",
            "speed-up",
            {name: [(w, at_top[w]["rps"][name] / at_top[counts[0]]["rps"][name]) for w in counts] for name in names},
        )
        written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each wrk run (5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per point; medians (3)")
    parser.add_argument("--workers", default="1,2", help="worker counts (1,2)")
    parser.add_argument("--connections", default="1,16,64", help="wrk connections (1,16,64)")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed wrk seconds per server (2)")
    parser.add_argument("--before", default=None, help="a loopml src/ directory to measure beside this tree's")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s runs, 1 round")
    parser.add_argument("--keep", action="store_true", help="keep the model and the server logs")
    parser.add_argument("--plot-only", action="store_true", help="redraw the plots from the last results file")
    args = parser.parse_args()
    if args.plot_only:
        written = plots(json.loads((RESULTS / "serving_curve.json").read_text()))
        print(f"plots: {', '.join(str(p.relative_to(REPO)) for p in written)}")
        return 0
    if args.quick:
        args.seconds, args.rounds, args.warmup = 2.0, 1, 1.0
    args.workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    args.connections = [int(c) for c in str(args.connections).split(",") if c.strip()]
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"missing {tool}: apt-get install -y {'wrk' if tool == 'wrk' else 'util-linux'}", file=sys.stderr)
            return 2
    if args.before and not (Path(args.before) / "loopml" / "serving").is_dir():
        print(f"--before {args.before}: not a loopml src/ directory", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tmp").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="serving-curve-", dir=RESULTS / "tmp"))
    config = {k: v for k, v in vars(args).items() if k not in ("keep", "plot_only")}
    print(f"serving curve: {config}; work dir {work}", flush=True)
    report: dict[str, Any] = {
        "benchmark": "serving_curve",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average_start": os.getloadavg()},
        "config": config,
    }
    started = time.perf_counter()
    try:
        run(args, work, report)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report["machine"]["load_average_end"] = os.getloadavg()
    report["elapsed_s"] = time.perf_counter() - started
    for point in report["points"]:
        point["ratios"] = ratios(point)
    expected = report["expected_prediction"]
    failed = sum(r["failed"] for p in report["points"] for runs in p["runs"].values() for r in runs)
    checks = {
        "bare and every loopml answer the model's prediction": all(
            abs(value - expected) <= 1e-9 * max(1.0, abs(expected))
            for name, value in report["answers"].items()
            if not name.startswith("echo")
        ),
        "no failed requests": failed == 0,
    }
    report["checks"] = checks
    written = plots(report)
    (RESULTS / "serving_curve.json").write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(report))
    print()
    at_one = [p for p in report["points"] if p["workers"] == 1]
    if at_one:
        best = max(p["ratios"]["loopml/echo"] for p in at_one)
        print(f"goal: loopml >= {TARGET_OF_ECHO:.0%} of echo at 1 worker; best point {best:.0%}")
    print("checks: " + ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in checks.items()))
    print(f"plots: {', '.join(str(p.relative_to(REPO)) for p in written)}")
    print(f"elapsed {report['elapsed_s']:.0f} s; results: {RESULTS / 'serving_curve.json'}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
