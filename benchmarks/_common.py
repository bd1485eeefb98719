"""What both sides of a benchmark share: the data, the query, ports, health checks and statistics.

Standard library only: the loopml side imports it from `.venv`, the anchor side from `.venv-anchors`,
so both build byte-for-byte the same data from the same seed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SEED = 20261126
METRIC_KEYS = 10
"""Ingest logs this many metric keys, round-robin (100,000 points = 10 keys x 10,000 steps)."""

SEARCH_EXPERIMENT = "search"
SEARCH_PARAMS = 10
SEARCH_METRICS = 10
SEARCH_FILTER = "metrics.m0 < 0.5 and params.p0 = 'a'"
"""m0 is uniform on [0, 1) and p0 uniform over a-d: about 1 run in 8 matches (1,250 of 10,000)."""
SEARCH_ORDER_BY = ["metrics.m1 ASC"]
SEARCH_MAX_RESULTS = 100


def ingest_points(count: int, seed: int = SEED, keys: int = METRIC_KEYS) -> list[tuple[str, float, int]]:
    """(key, value, step) for `count` points: keys k0..k{keys-1} in turn, each key's steps 0, 1, 2, ..."""
    rng = random.Random(seed)
    names = [f"k{i}" for i in range(keys)]
    return [(names[i % keys], rng.random(), i // keys) for i in range(count)]


def parse_sizes(text: str) -> list[int]:
    """`--sizes 1000,10000,1e5` -> [1000, 10000, 100000] (ascending, no repeats)."""
    try:
        sizes = sorted({int(float(part)) for part in text.split(",") if part.strip()})
    except ValueError:
        raise SystemExit(f"--sizes takes comma-separated counts such as 1000,10000,1e5; got {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise SystemExit(f"--sizes needs positive counts, got {text!r}")
    return sizes


def search_runs_data(
    runs: int, seed: int = SEED, start: int = 0
) -> Iterator[tuple[str, dict[str, str], dict[str, float]]]:
    """(run name, params, metrics) for runs `start` to `runs` - 1 of the search scenario; params are single
    letters a-d. The sequence does not depend on `runs`, so a store can grow by size: 0-1,000, then 1,000-10,000."""
    rng = random.Random(seed)
    for i in range(runs):
        params = {f"p{k}": "abcd"[int(rng.random() * 4)] for k in range(SEARCH_PARAMS)}
        metrics = {f"m{k}": rng.random() for k in range(SEARCH_METRICS)}
        if i >= start:
            yield f"run-{i:06d}", params, metrics


def expected_search_names(runs: int, seed: int = SEED) -> list[str]:
    """The run names the search must return, in order, computed in Python from the same data."""
    hits = [
        (metrics["m1"], name)
        for name, params, metrics in search_runs_data(runs, seed)
        if metrics["m0"] < 0.5 and params["p0"] == "a"
    ]
    return [name for _, name in sorted(hits)[:SEARCH_MAX_RESULTS]]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> float:
    """Poll `url` until it answers 200; returns the seconds it took. Fails fast if the process died."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL we built
                if response.status == 200:
                    return time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def summarize(seconds: list[float]) -> dict[str, float | int]:
    """Median, p90, min and max in milliseconds of repeated timings."""
    ms = sorted(s * 1000 for s in seconds)
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) > 1 else ms[0]
    return {
        "median_ms": statistics.median(ms),
        "p90_ms": p90,
        "min_ms": ms[0],
        "max_ms": ms[-1],
        "samples": len(ms),
    }


# -- registry benchmark (issue 3) ---------------------------------------------------------------------

BIKE_CSV = "examples/data/bike_sharing/hour.csv"
"""Relative to the repository root."""
BIKE_FEATURES = [
    "season", "mnth", "hr", "holiday", "weekday", "workingday", "weathersit", "temp", "atemp", "hum", "windspeed",
]  # fmt: skip
BIKE_FLOATS = frozenset({"temp", "atemp", "hum", "windspeed"})
"""The float64 features (read_csv infers the rest as int64)."""
BIKE_TARGET = "cnt"
REGISTRY_MODEL = "bike-demand"
REGISTRY_ALIAS = "champion"
REGISTRY_TREES = 32
REGISTRY_DEPTH = 12
"""RandomForestRegressor(n_estimators=32, max_depth=12) on the 17,379 rows pickles to about 10 MB."""


def bike_row(csv: str) -> dict[str, int | float]:
    """The first row of the Bike Sharing features, as Python scalars in feature order (the 1-row input)."""
    import csv as csv_module

    with open(csv, newline="") as handle:
        row = next(csv_module.DictReader(handle))
    return {name: (float(row[name]) if name in BIKE_FLOATS else int(row[name])) for name in BIKE_FEATURES}


# -- serving benchmark (issue 4) ----------------------------------------------------------------------

SERVING_DEPLOYMENT = "bike"
"""The loopml deployment name (`loopml serve --name bike`); benchmarks/wrk/native.lua posts to it."""
SERVING_RANDOM_STATE = 0
"""HistGradientBoostingRegressor(random_state=0), default params otherwise."""
HGB_SKOPS_TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
"""MLflow refuses to save a HistGradientBoosting model with skops unless this type is named as trusted."""


def run_anchor(python: Path, script: Path, *args: str) -> dict[str, Any]:
    """Run one subcommand of an anchor script in the anchor venv; its last stdout line is the JSON result."""
    done = subprocess.run([str(python), str(script), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the anchor side failed ({' '.join(args[:1])}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@contextmanager
def server(
    name: str,
    command: list[str],
    health: str,
    env: dict[str, str],
    log: Path,
    *,
    prefix: tuple[str, ...] = (),
    timeout: float = 120.0,
) -> Iterator[float]:
    """Start a server (after `prefix`, e.g. taskset) in its own process group, wait for its health route,
    and always stop it; yields the seconds it took to become healthy."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*prefix, *command],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            ready = wait_healthy(health, process, timeout=timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{name}: {exc}; its log:\n{log.read_text(errors='replace')[-3000:]}") from None
        yield ready
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """Stop a process started with `start_new_session=True`: SIGTERM to its group, SIGKILL after `grace` s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # the group we created: the server and any worker it forked
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# -- metric series benchmark (issue 10/13 follow-ups) ------------------------------------------------------

SERIES_KEY = "loss"


def series_points(count: int, seed: int = SEED) -> tuple[list[int], list[int], list[float]]:
    """(steps, timestamps, values) of one metric of `count` points: steps 0..count-1, one ms apart, a noisy
    decreasing loss. The same on both sides, from the seed."""
    rng = random.Random(seed)
    start = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    steps = list(range(count))
    return steps, [start + s for s in steps], [1.0 / (s + 1) + rng.random() * 1e-3 for s in steps]
