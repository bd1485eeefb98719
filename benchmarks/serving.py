"""Serving benchmark (issue 4): `loopml serve` against `mlflow models serve`, side by side in one run, same model.

    .venv/bin/python benchmarks/serving.py            # full run: 15 s per load run, 2 rounds, 1 and 2 workers
    .venv/bin/python benchmarks/serving.py --quick    # smoke run: 3 s per load run, 1 round, 1 worker

The model: a scikit-learn HistGradientBoostingRegressor (default params, random_state=0) trained once on the
Bike Sharing hourly data, dumped with joblib, then saved as a loopml package (`loopml.registry.save_model`,
here) and as an MLflow model (`mlflow.sklearn.save_model`, in `.venv-anchors`, from the same joblib file).

Scenarios (single-row JSON requests; wrk with the body in benchmarks/wrk/*.lua; every server pinned to CPU 0
and wrk to CPU 1 with taskset; the sides alternate within each round and the round order flips):
1. Throughput, `wrk -t1 -c32`, same worker count (1, and 2): loopml's native route
   `POST /v1/deployments/bike/predict {"records": [...]}`, loopml's `/invocations` with MLflow's body, and
   MLflow's `POST /invocations {"dataframe_records": [...]}`.
2. p99 at the same offered load, below MLflow's capacity: wrk2 is not installed, so `-c4` with a fixed
   pause per connection (benchmarks/wrk/common.lua, WRK_DELAY_MS) chosen so the offered rate is at most
   half of MLflow's throughput measured in scenario 1 (`--paced-fraction`), `--paced-rounds` rounds (4):
   a p99 of a few hundred requests on a shared machine is the noisiest figure here. Achieved rates are
   reported.
3. Request log on vs off, loopml native route, `-c32`: `loopml serve ... --request-log DIR` against the same
   command without it, `--ab-rounds` (10) pairs of `--ab-seconds` (6 s) runs; the ratio is the median of the
   pairs' on/off ratios (each pair runs back to back, so a drift in the machine's load hits both sides alike;
   many short pairs are steadier on a shared machine than a few long runs).
   Then the same two servers side by side, `--side-rounds` (4) runs of `--seconds`: both loaded at once, each
   in a CPU cgroup of its own with equal shares of CPU 0 (cgroup v1 `cpu.shares` or v2 `cpu.weight`; needs
   root; skipped with a note where no cgroup is writable). Other jobs on the machine then slow both alike,
   and each side's throughput is what it makes of the same CPU time: the steadiest measure of the log's cost
   on a shared machine.
4. Micro-batching on vs `--no-batching`, loopml native route, `-c64`, paired like scenario 3.

Every run also records the CPU time the server's processes used per request (`cpu_us_per_request`, from
/proc): on a saturated pinned core that is the cost behind the throughput, and far less disturbed by other
jobs on the machine than the throughput itself.

Results: a table on stdout and benchmarks/results/serving.json (every wrk run, server commands, machine).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from _common import (
    BIKE_CSV,
    BIKE_FEATURES,
    BIKE_TARGET,
    HGB_SKOPS_TRUSTED,
    SERVING_DEPLOYMENT,
    SERVING_RANDOM_STATE,
    bike_row,
    free_port,
)
from _common import (
    server as _common_server,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
WRK_DIR = HERE / "wrk"
CSV = REPO / BIKE_CSV
ANCHOR_BIN = REPO / ".venv-anchors" / "bin"
ANCHOR_PYTHON = ANCHOR_BIN / "python"
MLFLOW = ANCHOR_BIN / "mlflow"
LOOPML = Path(sys.executable).parent / "loopml"
SERVER_CPU = "0"
CLIENT_CPU = "1"

TARGETS = {"throughput_x": 4.0, "p99_x": 3.0, "log_cost": 0.10, "batching_x": 2.0}

# The MLflow side of the model: load the same joblib file in .venv-anchors and save it MLflow's way.
MLFLOW_SAVE = """\
import json, sys, time
import joblib, pandas as pd, sklearn, mlflow, mlflow.sklearn
model_file, csv, out = sys.argv[1], sys.argv[2], sys.argv[3]
features, trusted = json.loads(sys.argv[4]), json.loads(sys.argv[5])
model = joblib.load(model_file)
example = pd.read_csv(csv)[features].iloc[:5]
started = time.perf_counter()
mlflow.sklearn.save_model(model, out, input_example=example, skops_trusted_types=trusted)
print(json.dumps({"save_s": time.perf_counter() - started, "sklearn": sklearn.__version__,
                  "pandas": pd.__version__, "mlflow": mlflow.__version__}))
"""
ANCHOR_VERSIONS = "import json, sklearn; print(json.dumps({'sklearn': sklearn.__version__}))"

# -- processes ---------------------------------------------------------------------------------------


@contextmanager
def server(name: str, command: list[str], health: str, env: dict[str, str], log: Path) -> Iterator[float]:
    """Start a server pinned to SERVER_CPU (see `_common.server`)."""
    with _common_server(name, command, health, env, log, prefix=("taskset", "-c", SERVER_CPU), timeout=180.0) as ready:
        yield ready


def wrk(url: str, script: str, connections: int, seconds: float, delay_ms: float | None = None) -> dict[str, Any]:
    """One bounded wrk run pinned to CLIENT_CPU; the parsed WRK_JSON line plus requests per second."""
    return wrk_result(start_wrk(url, script, connections, seconds, delay_ms))


def start_wrk(
    url: str, script: str, connections: int, seconds: float, delay_ms: float | None = None
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    command = [
        "taskset",
        "-c",
        CLIENT_CPU,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(WRK_DIR / script),
        url,
    ]
    env = {**os.environ, "WRK_LUA_DIR": str(WRK_DIR)}
    if delay_ms:
        env["WRK_DELAY_MS"] = f"{delay_ms:g}"
    else:
        env.pop("WRK_DELAY_MS", None)
    run = {"connections": connections, "seconds": seconds, "delay_ms": delay_ms, "command": command}
    run["load_average_before"] = os.getloadavg()[0]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, run


def wrk_result(started: tuple[subprocess.Popen[str], dict[str, Any]]) -> dict[str, Any]:
    process, run = started
    stdout, stderr = process.communicate(timeout=run["seconds"] + 60)
    lines = [line for line in stdout.splitlines() if line.startswith("WRK_JSON ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({' '.join(run['command'])}):\n{stdout[-2000:]}\n{stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("WRK_JSON "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["p99_ms"] = result["latency_us"]["p99"] / 1000
    result["p50_ms"] = result["latency_us"]["p50"] / 1000
    result["failed"] = result["non2xx"] + sum(result["errors"].values())
    result.update((k, v) for k, v in run.items() if k != "command")
    return result


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - loopback URL we built
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback URL we built
        return json.loads(response.read())  # type: ignore[no-any-return]


# -- the model ---------------------------------------------------------------------------------------


def build_models(work: Path) -> dict[str, Any]:
    """Train once here, dump with joblib, save the loopml package here and the MLflow model in the anchor venv."""
    import joblib
    import numpy
    import pandas as pd
    import sklearn
    from sklearn.ensemble import HistGradientBoostingRegressor

    from loopml.registry import save_model

    theirs = json.loads(
        subprocess.run([str(ANCHOR_PYTHON), "-c", ANCHOR_VERSIONS], capture_output=True, text=True, check=True).stdout
    )
    ours = {"sklearn": sklearn.__version__, "numpy": numpy.__version__, "pandas": pd.__version__}
    if theirs["sklearn"] != ours["sklearn"]:
        raise RuntimeError(f"scikit-learn differs between the venvs ({ours['sklearn']} vs {theirs['sklearn']})")
    frame = pd.read_csv(CSV)
    features, target = frame[BIKE_FEATURES], frame[BIKE_TARGET]
    started = time.perf_counter()
    model = HistGradientBoostingRegressor(random_state=SERVING_RANDOM_STATE).fit(features, target)
    fit_s = time.perf_counter() - started
    model_file = work / "model.joblib"
    joblib.dump(model, model_file)
    loopml_dir, mlflow_dir = work / SERVING_DEPLOYMENT, work / "mlflow-model"
    save_model(model, loopml_dir, input_example=features[:5])
    saved = subprocess.run(
        [
            str(ANCHOR_PYTHON),
            "-c",
            MLFLOW_SAVE,
            str(model_file),
            str(CSV),
            str(mlflow_dir),
            json.dumps(BIKE_FEATURES),
            json.dumps(HGB_SKOPS_TRUSTED),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if saved.returncode != 0:
        raise RuntimeError(f"mlflow.sklearn.save_model failed:\n{saved.stderr[-3000:]}")
    expected = float(model.predict(pd.DataFrame([bike_row(str(CSV))]))[0])
    return {
        "estimator": f"HistGradientBoostingRegressor(random_state={SERVING_RANDOM_STATE})",
        "fit_s": fit_s,
        "joblib_bytes": model_file.stat().st_size,
        "n_iter": int(model.n_iter_),
        "loopml_dir": str(loopml_dir),
        "mlflow_dir": str(mlflow_dir),
        "expected_prediction": expected,
        "versions": {"loopml_venv": ours, "anchor_venv": json.loads(saved.stdout.strip().splitlines()[-1])},
    }


# -- scenarios ---------------------------------------------------------------------------------------


def alternate(
    runs: dict[str, tuple[str, str, int, float | None]], rounds: int, seconds: float, label: str
) -> dict[str, list[dict[str, Any]]]:
    """`rounds` rounds of one wrk run per side (name -> url, script, connections, delay); the order flips each
    round so a drift in the machine's load hits every side alike. Each run also records the CPU time the
    server's processes spent per request."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    names = list(runs)
    for index in range(rounds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            url, script, connections, delay = runs[name]
            cpu_before = server_cpu_seconds(url)
            result = wrk(url, script, connections, seconds, delay)
            result["cpu_us_per_request"] = (server_cpu_seconds(url) - cpu_before) / max(result["requests"], 1) * 1e6
            out[name].append(result)
            print(
                f"  {label} round {index + 1}/{rounds} {name:<22} {result['rps']:>9,.0f} req/s  "
                f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms  "
                f"cpu {result['cpu_us_per_request']:6.1f} us/req  failed {result['failed']}",
                flush=True,
            )
    return out


def server_cpu_seconds(url: str) -> float:
    """User + system CPU seconds of every live process in the session of the server listening at `url` (its
    workers included; `_common.server` starts each server in a session of its own)."""
    ticks = 0
    for pid in _session_pids(url):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = _stat(pid)
            ticks += fields[11] + fields[12]
    return ticks / os.sysconf("SC_CLK_TCK")


def _listening_pid(url: str) -> int:
    port = url.rsplit(":", 1)[1]
    listing = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True)
    return int(listing.stdout.split("pid=", 1)[1].split(",", 1)[0])


def _stat(pid: int) -> list[int]:
    """The numeric fields of /proc/PID/stat after the command name (state left out as 0)."""
    text = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [0, *map(int, text[1:])]


def paired_ratio(runs: dict[str, list[dict[str, Any]]], on: str, off: str, key: str = "rps") -> float:
    """The median over rounds of `on`'s `key` divided by `off`'s in the same round."""
    return float(statistics.median(a[key] / b[key] for a, b in zip(runs[on], runs[off], strict=True)))


def side_by_side(
    runs: dict[str, tuple[str, str, int]], rounds: int, seconds: float, label: str
) -> dict[str, list[dict[str, Any]]] | None:
    """`rounds` runs in which every server (name -> url, script, connections) is loaded at the same time, each
    server in a CPU cgroup of its own with equal shares of the one core they are pinned to. Whatever else the
    machine is doing then slows every side alike, and a side's throughput is what it makes of the same CPU
    time. None when this machine offers no writable cgroup CPU controller (then the paired runs stand alone)."""
    groups = _cpu_groups(list(runs))
    if groups is None:
        print(f"  {label}: no writable cgroup cpu controller; the side-by-side runs are skipped", flush=True)
        return None
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
    try:
        for name, (url, _, _) in runs.items():
            for pid in _session_pids(url):
                (groups[name] / "cgroup.procs").write_text(str(pid))
        for index in range(rounds):
            cpu_before = {name: server_cpu_seconds(url) for name, (url, _, _) in runs.items()}
            started = {name: start_wrk(url, script, c, seconds) for name, (url, script, c) in runs.items()}
            for name, run in started.items():
                result = wrk_result(run)
                spent = server_cpu_seconds(runs[name][0]) - cpu_before[name]
                result["cpu_us_per_request"] = spent / max(result["requests"], 1) * 1e6
                result["cpu_share"] = spent / seconds
                out[name].append(result)
            print(
                f"  {label} side by side {index + 1}/{rounds}: "
                + ", ".join(
                    f"{name} {out[name][-1]['rps']:,.0f} req/s ({out[name][-1]['cpu_share']:.0%} CPU, "
                    f"{out[name][-1]['cpu_us_per_request']:.1f} us/req, failed {out[name][-1]['failed']})"
                    for name in runs
                ),
                flush=True,
            )
    finally:
        _remove_cpu_groups(groups)
    return out


_CGROUP_CPU = Path("/sys/fs/cgroup/cpu")  # cgroup v1; on a v2-only machine, /sys/fs/cgroup with cpu.weight


def _cpu_groups(names: list[str]) -> dict[str, Path] | None:
    v1 = (_CGROUP_CPU / "cpu.shares").exists()
    own = _own_cgroup("cpu" if v1 else "")
    if own is None:
        return None
    root = (_CGROUP_CPU if v1 else Path("/sys/fs/cgroup")) / own.lstrip("/")
    if not v1:
        controllers = root / "cgroup.subtree_control"
        try:
            if "cpu" not in controllers.read_text().split():
                controllers.write_text("+cpu")
        except OSError:
            return None
    groups: dict[str, Path] = {}
    try:
        for name in names:
            group = root / f"loopml-bench-{os.getpid()}-{name.replace(' ', '-')}"
            group.mkdir()
            groups[name] = group
            if v1:
                (group / "cpu.shares").write_text("1024")
            else:
                (group / "cpu.weight").write_text("100")
    except OSError:
        _remove_cpu_groups(groups)
        return None
    return groups


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path in the hierarchy of `controller` ("" for cgroup v2)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") or (not controller and not controllers):
            return path
    return None


def _remove_cpu_groups(groups: dict[str, Path]) -> None:
    for group in groups.values():
        parent = group.parent / "cgroup.procs"
        for pid in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                parent.write_text(pid)
        with contextlib.suppress(OSError):
            group.rmdir()


def _session_pids(url: str) -> list[int]:
    """Every live process in the session of the server listening at `url`."""
    session = _stat(_listening_pid(url))[3]
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                if _stat(int(entry.name))[3] == session:
                    pids.append(int(entry.name))
    return pids


def warm(urls: list[tuple[str, str]], seconds: float) -> None:
    for url, script in urls:
        wrk(url, script, 8, seconds)


def median(results: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in results))


def run(args: argparse.Namespace, work: Path, report: dict[str, Any]) -> None:
    print("model: training HistGradientBoostingRegressor, saving both ways ...", flush=True)
    model = build_models(work)
    report["model"] = model
    print(
        f"  fit {model['fit_s']:.1f} s, {model['n_iter']} iterations, {model['joblib_bytes'] / 1e6:.2f} MB", flush=True
    )
    row = bike_row(str(CSV))
    native_body, mlflow_body = {"records": [row]}, {"dataframe_records": [row]}
    mlflow_env = {"PATH": f"{ANCHOR_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # it execs `uvicorn` by name
    predictions: dict[str, float] = {}
    scenarios: dict[str, Any] = {}
    report["scenarios"] = scenarios
    report["servers"] = {}
    secs, rounds = args.seconds, args.rounds

    for workers in args.workers:
        ports = {k: free_port() for k in ("loopml", "mlflow", "nobatch", "logged")}
        urls = {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
        commands = {
            "loopml": [
                str(LOOPML),
                "serve",
                "--model-dir",
                model["loopml_dir"],
                "--name",
                SERVING_DEPLOYMENT,
                "--port",
                str(ports["loopml"]),
                "--workers",
                str(workers),
            ],
            "mlflow": [
                str(MLFLOW),
                "models",
                "serve",
                "-m",
                model["mlflow_dir"],
                "-p",
                str(ports["mlflow"]),
                "--env-manager",
                "local",
                "--workers",
                str(workers),
            ],
            "nobatch": [
                str(LOOPML),
                "serve",
                "--model-dir",
                model["loopml_dir"],
                "--name",
                SERVING_DEPLOYMENT,
                "--port",
                str(ports["nobatch"]),
                "--workers",
                str(workers),
                "--no-batching",
            ],
            "logged": [
                str(LOOPML),
                "serve",
                "--model-dir",
                model["loopml_dir"],
                "--name",
                SERVING_DEPLOYMENT,
                "--port",
                str(ports["logged"]),
                "--workers",
                str(workers),
                "--request-log",
                str(work / f"request-log-{workers}"),
            ],
        }
        # Only the first worker count runs the loopml-only scenarios (log, batching).
        wanted = ["loopml", "mlflow"] + (["nobatch", "logged"] if workers == args.workers[0] else [])
        print(
            f"workers={workers}: starting {', '.join(wanted)} "
            f"(servers on CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU}) ...",
            flush=True,
        )
        with ExitStack() as stack:
            for name in wanted:
                env = mlflow_env if name == "mlflow" else {"LOOPML_HOME": str(work / f"home-{name}-{workers}")}
                ready = stack.enter_context(
                    server(name, commands[name], f"{urls[name]}/health", env, work / f"{name}-{workers}.log")
                )
                report["servers"][f"{name}-{workers}"] = {
                    "command": commands[name][1:],
                    "workers": workers,
                    "ready_s": ready,
                }
            native_path = f"/v1/deployments/{SERVING_DEPLOYMENT}/predict"
            for name in wanted:  # the same row gets the same answer everywhere
                if name == "mlflow":
                    predictions[f"mlflow-{workers} /invocations"] = post(urls[name] + "/invocations", mlflow_body)[
                        "predictions"
                    ][0]
                else:
                    predictions[f"{name}-{workers} native"] = post(urls[name] + native_path, native_body)[
                        "predictions"
                    ][0]
            predictions[f"loopml-{workers} /invocations"] = post(urls["loopml"] + "/invocations", mlflow_body)[
                "predictions"
            ][0]
            warm(
                [
                    (urls["loopml"], "native.lua"),
                    (urls["loopml"], "invocations.lua"),
                    (urls["mlflow"], "invocations.lua"),
                ]
                + [(urls[n], "native.lua") for n in wanted[2:]],
                args.warmup,
            )

            key = f"throughput_c32_w{workers}"
            scenarios[key] = alternate(
                {
                    "loopml native": (urls["loopml"], "native.lua", 32, None),
                    "loopml /invocations": (urls["loopml"], "invocations.lua", 32, None),
                    "mlflow /invocations": (urls["mlflow"], "invocations.lua", 32, None),
                },
                rounds,
                secs,
                f"w{workers} c32",
            )
            if workers != args.workers[0]:
                continue
            # The offered rate for the p99 comparison: a fraction of MLflow's measured capacity (just above),
            # unless --paced-delay-ms fixes the pause.
            capacity = median(scenarios[key]["mlflow /invocations"], "rps")
            delay = args.paced_delay_ms or args.paced_connections * 1000 / (args.paced_fraction * capacity)
            report["paced"] = {
                "mlflow_capacity_rps": capacity,
                "fraction": args.paced_fraction,
                "delay_ms": delay,
                "connections": args.paced_connections,
                "max_offered_rps": args.paced_connections * 1000 / delay,
            }
            print(
                f"  paced: {args.paced_connections} connections x {delay:.0f} ms pause "
                f"(at most {args.paced_connections * 1000 / delay:.0f} req/s; MLflow's capacity {capacity:.0f})",
                flush=True,
            )
            scenarios["paced_p99"] = alternate(
                {
                    "loopml native": (urls["loopml"], "native.lua", args.paced_connections, delay),
                    "loopml /invocations": (urls["loopml"], "invocations.lua", args.paced_connections, delay),
                    "mlflow /invocations": (urls["mlflow"], "invocations.lua", args.paced_connections, delay),
                },
                args.paced_rounds,
                secs,
                f"w{workers} paced",
            )
            scenarios["request_log"] = alternate(
                {
                    "log off": (urls["loopml"], "native.lua", 32, None),
                    "log on": (urls["logged"], "native.lua", 32, None),
                },
                args.ab_rounds,
                args.ab_seconds,
                f"w{workers} c32",
            )
            side = side_by_side(
                {
                    "log off": (urls["loopml"], "native.lua", 32),
                    "log on": (urls["logged"], "native.lua", 32),
                },
                args.side_rounds,
                secs,
                f"w{workers} c32",
            )
            if side is not None:
                scenarios["request_log_side_by_side"] = side
            scenarios["batching_c64"] = alternate(
                {
                    "batching on": (urls["loopml"], "native.lua", 64, None),
                    "batching off": (urls["nobatch"], "native.lua", 64, None),
                },
                args.ab_rounds,
                args.ab_seconds,
                f"w{workers} c64",
            )
        if workers == args.workers[0]:
            logged = list((work / f"request-log-{workers}").rglob("*"))
            report["request_log_files"] = {
                "files": len([p for p in logged if p.is_file()]),
                "bytes": sum(p.stat().st_size for p in logged if p.is_file()),
                "parquet": len([p for p in logged if p.suffix == ".parquet"]),
            }
    report["predictions"] = predictions


# -- report ------------------------------------------------------------------------------------------


def rows(report: dict[str, Any], workers: list[int]) -> list[dict[str, Any]]:
    s = report["scenarios"]
    found: list[dict[str, Any]] = []
    for w in workers:
        runs = s[f"throughput_c32_w{w}"]
        theirs = median(runs["mlflow /invocations"], "rps")
        plural = "s" if w > 1 else ""
        for side in ("loopml native", "loopml /invocations"):
            mine = median(runs[side], "rps")
            found.append(
                {
                    "scenario": f"throughput, {w} worker{plural}, c32: {side} vs MLflow /invocations (req/s)",
                    "loopml": mine,
                    "mlflow": theirs,
                    "ratio": mine / theirs,
                    "target": f">= {TARGETS['throughput_x']:.0f}x",
                    "pass": mine / theirs >= TARGETS["throughput_x"],
                }
            )
    paced = s["paced_p99"]
    theirs_p99 = median(paced["mlflow /invocations"], "p99_ms")
    for side in ("loopml native", "loopml /invocations"):
        mine_p99 = median(paced[side], "p99_ms")
        found.append(
            {
                "scenario": f"p99 at the same offered load (paced c{report['config']['paced_connections']}, "
                f"~{median(paced[side], 'rps'):.0f} vs ~{median(paced['mlflow /invocations'], 'rps'):.0f} req/s): "
                f"{side} (ms)",
                "loopml": mine_p99,
                "mlflow": theirs_p99,
                "ratio": theirs_p99 / mine_p99,
                "target": f"<= 1/{TARGETS['p99_x']:.0f} of MLflow",
                "pass": theirs_p99 / mine_p99 >= TARGETS["p99_x"],
            }
        )
    c32 = s[f"throughput_c32_w{workers[0]}"]
    found.append(
        {
            "scenario": f"p99 at c32 (saturated), {workers[0]} worker: loopml native vs MLflow (ms, reported)",
            "loopml": median(c32["loopml native"], "p99_ms"),
            "mlflow": median(c32["mlflow /invocations"], "p99_ms"),
            "ratio": median(c32["mlflow /invocations"], "p99_ms") / median(c32["loopml native"], "p99_ms"),
            "target": "(reported)",
            "pass": None,
        }
    )
    log = s["request_log"]
    log_target = (
        f"cost <= {TARGETS['log_cost']:.0%} (ratio >= {1 - TARGETS['log_cost']:.2f})",
        1 - TARGETS["log_cost"],
    )
    found.append(
        on_off_row(
            "request log on vs off, loopml native, c32 (req/s; baseline column = off; ratio: median of paired rounds)",
            log,
            "log on",
            "log off",
            *log_target,
        )
    )
    found.append(
        {
            "scenario": "request log on vs off: server CPU per request (us; baseline column = off; ratio: off/on)",
            "loopml": median(log["log on"], "cpu_us_per_request"),
            "mlflow": median(log["log off"], "cpu_us_per_request"),
            "ratio": 1 / paired_ratio(log, "log on", "log off", "cpu_us_per_request"),
            "target": "(reported)",
            "pass": None,
        }
    )
    side = s.get("request_log_side_by_side")
    if side is not None:
        found.append(
            on_off_row(
                "request log on vs off, side by side (both loaded at once, equal CPU shares of one core), c32 "
                "(req/s; baseline column = off; ratio: median of runs)",
                side,
                "log on",
                "log off",
                *log_target,
            )
        )
    found.append(
        on_off_row(
            "micro-batching on vs --no-batching, loopml native, c64 (req/s; baseline column = off; ratio: median of "
            "paired rounds)",
            s["batching_c64"],
            "batching on",
            "batching off",
            f">= {TARGETS['batching_x']:.0f}x",
            TARGETS["batching_x"],
        )
    )
    return found


def on_off_row(
    scenario: str, runs: dict[str, list[dict[str, Any]]], on: str, off: str, target: str, minimum: float
) -> dict[str, Any]:
    """A table row comparing two loopml servers run in pairs: medians of each side, median of the pair ratios."""
    ratio = paired_ratio(runs, on, off)
    return {
        "scenario": scenario,
        "loopml": median(runs[on], "rps"),
        "mlflow": median(runs[off], "rps"),
        "ratio": ratio,
        "target": target,
        "pass": ratio >= minimum,
    }


def _number(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def table(found: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | loopml | MLflow / baseline | ratio | target | result |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in found:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:,.2f}x"
        verdict = {True: "pass", False: "FAIL", None: "-"}[row["pass"]]
        lines.append(
            f"| {row['scenario']} | {_number(row['loopml'])} | {_number(row['mlflow'])} | {ratio} "
            f"| {row['target']} | {verdict} |"
        )
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each wrk run (15)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per scenario; medians (2)")
    parser.add_argument(
        "--ab-rounds", type=int, default=10, help="paired rounds of the on/off scenarios (request log, batching) (10)"
    )
    parser.add_argument("--side-rounds", type=int, default=4, help="side-by-side runs of the request log scenario (4)")
    parser.add_argument("--ab-seconds", type=float, default=6.0, help="duration of each on/off wrk run (6)")
    parser.add_argument("--workers", default="1,2", help="worker counts for the throughput scenario (1,2)")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed wrk seconds per server and route (2)")
    parser.add_argument("--paced-connections", type=int, default=4, help="connections of the p99 scenario (4)")
    parser.add_argument(
        "--paced-rounds", type=int, default=4, help="rounds of the p99 scenario (4: its p99 is the noisiest figure)"
    )
    parser.add_argument(
        "--paced-fraction",
        type=float,
        default=0.5,
        help="p99 scenario: offer this fraction of MLflow's measured c32 throughput (0.5)",
    )
    parser.add_argument(
        "--paced-delay-ms",
        type=float,
        default=None,
        help="p99 scenario: fixed pause per connection after each response (default: from the fraction)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s runs, 1 round, 1 worker, 1 s warm-up")
    parser.add_argument("--keep", action="store_true", help="keep the models, request logs and server logs")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.paced_rounds, args.workers, args.warmup = 3.0, 1, 1, "1", 1.0
        args.ab_rounds, args.ab_seconds, args.side_rounds = 1, 3.0, 1
    args.workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    for needed in (ANCHOR_PYTHON, MLFLOW, LOOPML, CSV):
        if not needed.exists():
            print(f"missing {needed}: run `make install` and `make anchors` first", file=sys.stderr)
            return 2
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"missing {tool}: apt-get install -y {'wrk' if tool == 'wrk' else 'util-linux'}", file=sys.stderr)
            return 2

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tmp").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="serving-", dir=RESULTS / "tmp"))
    config: dict[str, Any] = {k: v for k, v in vars(args).items() if k != "keep"}
    config.update(server_cpu=SERVER_CPU, client_cpu=CLIENT_CPU, wrk="wrk -t1 --timeout 5s --latency")
    print(f"serving benchmark: {config}; work dir {work}", flush=True)
    report: dict[str, Any] = {
        "benchmark": "serving",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_start": os.getloadavg(),
        },
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
    found = rows(report, args.workers)
    report["rows"] = found
    expected = report["model"]["expected_prediction"]
    failed = sum(r["failed"] for runs in report["scenarios"].values() for side in runs.values() for r in side)
    checks = {
        "every server predicts the same value as the model": all(
            abs(v - expected) <= 1e-9 * max(1.0, abs(expected)) for v in report["predictions"].values()
        ),
        "no failed requests (non-2xx, socket errors, timeouts)": failed == 0,
    }
    report["checks"] = checks
    (RESULTS / "serving.json").write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(found))
    print()
    print(f"request log written by the 'log on' server: {report.get('request_log_files')}")
    print("checks: " + ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in checks.items()))
    print(f"elapsed {report['elapsed_s']:.0f} s; results: {RESULTS / 'serving.json'}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
