"""Pipeline orchestration overhead: loopml against Prefect 3 and Metaflow, and loopml on Ray against bare Ray.

    .venv/bin/python benchmarks/pipelines.py            # full run (needs make install, make anchors-pipelines)
    .venv/bin/python benchmarks/pipelines.py --quick    # smoke run: 20-step chain, 50-step fan-out, 100 Ray tasks

Scenarios (trivial steps, so what is timed is the orchestration, not the work):
- chain: N steps, each `x + 1` on its predecessor's output (default N=200);
- fan-out: M independent steps `i + 1` and one step summing them (default M=1,000);
- loopml with the `process` (default) and `inline` executors, cache off, on an embedded store;
  Prefect 3 (local, default task runner, one untimed flow first so its temporary API server is up);
  Metaflow (`python flow.py run`, local, one process per task, as its users run it);
- the fully cached rerun of the chain (every step a cache hit), in ms per step;
- Ray: the fan-out through loopml's `ray` executor against the same M bare `ray.remote` tasks on the same
  local Ray; the first `ray.init()` is reported on its own.

Prints a table (scenario, loopml, anchor, ratio, target, pass/FAIL) and writes
`benchmarks/results/pipelines.json`. Exit code 1 if a side computed a wrong answer; a missed target is
reported in the table, not as an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _common import run_anchor  # noqa: E402

ANCHOR_PYTHON = ROOT / ".venv-anchors-pipelines" / "bin" / "python"
ANCHOR_SCRIPT = HERE / "anchors" / "pipelines_anchor.py"
RESULTS = HERE / "results"


def _answer(shape: str, n: int) -> int:
    return n if shape == "chain" else n * (n + 1) // 2


def _anchor(tool: str, shape: str, n: int, work: Path) -> dict[str, Any]:
    home = work / f"{tool}-{shape}"
    home.mkdir(parents=True, exist_ok=True)
    env_before = dict(os.environ)
    os.environ.update(
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # A fresh PREFECT_HOME migrates its database first; on a loaded 2-core machine that passes the 20 s default.
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
    )
    os.environ.pop("PYTHONPATH", None)
    try:
        result = run_anchor(ANCHOR_PYTHON, ANCHOR_SCRIPT, tool, shape, str(n))
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    if result["answer"] != _answer(shape, n):
        raise SystemExit(f"{tool} {shape} answered {result['answer']}, expected {_answer(shape, n)}")
    return result


def _loopml(shape: str, n: int, executor: str, home: Path, cache: bool = False) -> tuple[float, Any]:
    import pipeline_shapes

    import loopml as lm

    pipeline = pipeline_shapes.chain if shape == "chain" else pipeline_shapes.fanout
    with lm.Client(home=home) as client:
        started = time.perf_counter()
        run = pipeline.run(n=n, executor=executor, cache=cache, client=client)
        seconds = time.perf_counter() - started
        if run.status != "FINISHED":
            raise SystemExit(f"loopml {shape} on {executor} ended {run.status}")
        answer = run.result
    if answer != _answer(shape, n):
        raise SystemExit(f"loopml {shape} on {executor} answered {answer}, expected {_answer(shape, n)}")
    return seconds, run


def _cached_chain(n: int, home: Path) -> float:
    """ms per step of a rerun where every step is a cache hit."""
    try:
        from pipelines_loopml import loopml_cached_chain
    except ImportError:
        loopml_cached_chain = None
    if loopml_cached_chain is not None:
        return float(loopml_cached_chain(n)["ms_per_step"])
    _loopml("chain", n, "inline", home, cache=True)
    seconds, _ = _loopml("chain", n, "inline", home, cache=True)
    return seconds * 1000 / n


def _ray(n: int, home: Path) -> dict[str, Any]:
    import ray

    started = time.perf_counter()
    ray.init(log_to_driver=False, configure_logging=False)
    first_init = time.perf_counter() - started

    @ray.remote
    def inc(x: int) -> int:
        return x + 1

    ray.get([inc.remote(i) for i in range(50)])  # warm the worker pool for both sides
    started = time.perf_counter()
    bare = sum(ray.get([inc.remote(i) for i in range(n)]))
    bare_seconds = time.perf_counter() - started
    if bare != _answer("fanout", n):
        raise SystemExit(f"bare Ray answered {bare}, expected {_answer('fanout', n)}")
    _loopml("fanout", min(n, 50), "ray", home)  # warm: the workers import loopml and the steps' module
    seconds, _ = _loopml("fanout", n, "ray", home)
    ray.shutdown()
    return {"first_init_s": first_init, "bare_s": bare_seconds, "loopml_s": seconds}


def _row(name: str, ours: float, theirs: float | None, target: str, ok: bool | None) -> list[str]:
    ratio = "" if theirs is None else f"{theirs / ours:.1f}x" if theirs >= ours else f"1/{ours / theirs:.2f}"
    verdict = "" if ok is None else "pass" if ok else "FAIL"
    return [name, f"{ours:.3f} s", "" if theirs is None else f"{theirs:.3f} s", ratio, target, verdict]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--ray-steps", type=int, default=1000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--metaflow",
        choices=["both", "chain", "none"],
        default="both",
        help="which shapes run on Metaflow too (its 1,000-task fan-out takes tens of minutes on 2 cores)",
    )
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument(
        "--scenarios", default="local,cached,ray", help="which parts to run: local (against the anchors), cached, ray"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores under benchmarks/results/tmp")
    args = parser.parse_args()
    if args.quick:
        args.chain, args.fanout, args.ray_steps = 20, 50, 100
    if not ANCHOR_PYTHON.exists():
        raise SystemExit(f"{ANCHOR_PYTHON} is missing: run `make anchors-pipelines` first")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tmp").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="pipelines-", dir=RESULTS / "tmp"))
    results: dict[str, Any] = {
        "args": vars(args),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
    }
    rows: list[list[str]] = []
    try:
        parts = set(args.scenarios.split(","))
        for shape, n in (("chain", args.chain), ("fanout", args.fanout)) if "local" in parts else ():
            label = f"{n}-step {shape}"
            ours = {ex: _loopml(shape, n, ex, work / f"loopml-{shape}-{ex}")[0] for ex in ("process", "inline")}
            prefect = _anchor("prefect", shape, n, work)
            results[shape] = {"loopml": ours, "prefect": prefect}
            for ex, seconds in ours.items():
                ratio = prefect["seconds"] / seconds
                rows.append(_row(f"{label}, {ex} vs Prefect", seconds, prefect["seconds"], ">= 5x", ratio >= 5))
            if args.metaflow == "both" or args.metaflow == shape:
                metaflow = _anchor("metaflow", shape, n, work)
                results[shape]["metaflow"] = metaflow
                for ex, seconds in ours.items():
                    ratio = metaflow["seconds"] / seconds
                    rows.append(_row(f"{label}, {ex} vs Metaflow", seconds, metaflow["seconds"], ">= 20x", ratio >= 20))
            print(json.dumps({shape: results[shape]}), flush=True)
        cached_ms = _cached_chain(args.chain, work / "loopml-cached") if "cached" in parts else None
        results["cached_chain_ms_per_step"] = cached_ms
        if cached_ms is not None:
            verdict = "pass" if cached_ms <= 2 else "FAIL"
            label = f"{args.chain}-step chain, fully cached rerun"
            rows.append([label, f"{cached_ms:.2f} ms/step", "", "", "<= 2 ms/step", verdict])
        if not args.skip_ray and "ray" in parts:
            ray = _ray(args.ray_steps, work / "loopml-ray")
            results["ray"] = ray
            ratio = ray["loopml_s"] / ray["bare_s"]
            rows.append([f"{args.ray_steps} steps on local Ray vs bare ray.remote", f"{ray['loopml_s']:.3f} s",
                         f"{ray['bare_s']:.3f} s", f"{ratio:.2f}x the time", "<= 1.5x",
                         "pass" if ratio <= 1.5 else "FAIL"])  # fmt: skip
            rows.append(["first ray.init() (Ray's own start-up)", f"{ray['first_init_s']:.2f} s", "", "", "", ""])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    (RESULTS / "pipelines.json").write_text(json.dumps(results, indent=2))
    header = ["scenario", "loopml", "anchor", "ratio", "target", ""]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
