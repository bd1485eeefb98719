"""The loopml side of the pipelines benchmark: trivial steps in a chain or a fan-out, run through the public
SDK on an embedded store in a fresh directory. `benchmarks/pipelines.py` times these next to the anchors;
run this file alone for loopml's own figures:

    .venv/bin/python benchmarks/pipelines_loopml.py --steps 200
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import loopml as lm


@lm.step
def increment(x: int) -> int:
    return x + 1


@lm.step
def total(values: list[int]) -> int:
    return sum(values)


@lm.pipeline
def chain(n: int = 200) -> Any:
    value = increment(0)
    for _ in range(n - 1):
        value = increment(value)
    return value


@lm.pipeline
def fan_out(n: int = 1000) -> Any:
    return total(increment.map([{"x": i} for i in range(n)]))


def _timed(pipeline: Any, client: lm.Client, executor: str, **params: Any) -> tuple[float, Any]:
    return _clocked(pipeline, client, executor, **params)[::2]


def _clocked(pipeline: Any, client: lm.Client, executor: str, **params: Any) -> tuple[float, float, Any]:
    """Wall time, CPU time of this process, and the run."""
    started, cpu = time.perf_counter(), time.process_time()
    run = pipeline.run(client=client, executor=executor, **params)
    elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    if run.status != "FINISHED":
        raise RuntimeError(f"the benchmark pipeline did not finish: {run}")
    return elapsed, used, run


def loopml_chain(n: int, executor: str = "process", home: Path | None = None) -> dict[str, Any]:
    """Wall time of one uncached run of an n-step chain of trivial steps (the store is new)."""
    directory = Path(home or tempfile.mkdtemp(prefix="loopml-bench-chain-"))
    try:
        with lm.Client(home=directory) as client:
            seconds, run = _timed(chain, client, executor, n=n)
            assert run.result == n
        return {"scenario": "chain", "steps": n, "executor": executor, "seconds": seconds}
    finally:
        if home is None:
            shutil.rmtree(directory, ignore_errors=True)


def loopml_fan_out(n: int, executor: str = "process", home: Path | None = None) -> dict[str, Any]:
    """Wall time of one uncached run of n independent trivial steps and one step summing them."""
    directory = Path(home or tempfile.mkdtemp(prefix="loopml-bench-fanout-"))
    try:
        with lm.Client(home=directory) as client:
            seconds, run = _timed(fan_out, client, executor, n=n)
            assert run.result == sum(range(1, n + 1))
        return {"scenario": "fan_out", "steps": n + 1, "executor": executor, "seconds": seconds}
    finally:
        if home is None:
            shutil.rmtree(directory, ignore_errors=True)


def loopml_cached_chain(n: int, executor: str = "process", repeats: int = 3) -> dict[str, Any]:
    """Per-step wall time of a fully cached rerun of an n-step chain (the first, uncached run is not timed);
    the median of `repeats` reruns. Target: at most 2 ms per step. A cached run does all its work in this
    process (no step runs), so its CPU time is reported too: on a loaded machine it is the steadier figure."""
    directory = Path(tempfile.mkdtemp(prefix="loopml-bench-cached-"))
    try:
        with lm.Client(home=directory) as client:
            _timed(chain, client, executor, n=n)
            times, cpu = [], []
            for _ in range(repeats):
                seconds, used, run = _clocked(chain, client, executor, n=n)
                assert all(s.state.value == "cached" for s in run.steps.values())
                times.append(seconds)
                cpu.append(used)
        median = sorted(times)[len(times) // 2]
        return {
            "scenario": "cached_chain",
            "steps": n,
            "executor": executor,
            "seconds": median,
            "ms_per_step": 1000 * median / n,
            "cpu_ms_per_step": 1000 * sorted(cpu)[len(cpu) // 2] / n,
            "runs": times,
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--fan-out", type=int, default=1000)
    parser.add_argument("--executor", default="process")
    args = parser.parse_args()
    for result in (
        loopml_chain(args.steps, args.executor),
        loopml_fan_out(args.fan_out, args.executor),
        loopml_cached_chain(args.steps, args.executor),
    ):
        print(json.dumps(result))


if __name__ == "__main__":
    main()
