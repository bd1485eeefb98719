"""The Prefect 3 and Metaflow side of benchmarks/pipelines.py, run with `.venv-anchors-pipelines/bin/python`.

    prefect chain N | prefect fanout N      a Prefect flow, local, default task runner (in this process)
    metaflow chain N | metaflow fanout N    a generated Metaflow flow, `python flow.py run` (one process per task)

chain: N steps, each `x + 1` on its predecessor's output, starting from 0 (the answer is N).
fanout: N independent steps `i + 1` for i in 0..N-1, then one step summing them (the answer is N(N+1)/2).

Prints one JSON line on stdout: the library version, the wall seconds of the timed run and its answer. Prefect
runs one untimed flow first so its ephemeral API server and imports are warm (start-up is not what we
measure); a Metaflow run is a fresh `python flow.py run` each time, as its users run it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def prefect(shape: str, n: int) -> dict[str, Any]:
    import prefect as prefect_module
    from prefect import flow, task

    @task
    def inc(x: int) -> int:
        return x + 1

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @flow
    def chain(count: int) -> int:
        x = 0
        for _ in range(count):
            x = inc(x)  # a direct call: Prefect's fastest path for a dependent task
        return x

    @flow
    def fanout(count: int) -> int:
        futures = inc.map(range(count))  # submitted to the default ThreadPoolTaskRunner
        return total(futures.result())

    pipeline = chain if shape == "chain" else fanout
    pipeline(2)  # warm: ephemeral server, imports, first flow registration
    started = time.perf_counter()
    answer = pipeline(n)
    seconds = time.perf_counter() - started
    return {"tool": "prefect", "version": prefect_module.__version__, "seconds": seconds, "answer": answer}


def _metaflow_source(shape: str, n: int) -> str:
    lines = [
        "from metaflow import FlowSpec, step",
        "",
        "",
        "class BenchFlow(FlowSpec):",
    ]
    if shape == "chain":
        lines += ["    @step", "    def start(self):", "        self.x = 0", "        self.next(self.s0)", ""]
        for i in range(n):
            following = f"self.s{i + 1}" if i + 1 < n else "self.end"
            body = ["        self.x = self.x + 1", f"        self.next({following})", ""]
            lines += ["    @step", f"    def s{i}(self):", *body]
        lines += ["    @step", "    def end(self):", "        print('ANSWER', self.x)", ""]
    else:
        lines += [
            "    @step",
            "    def start(self):",
            f"        self.items = list(range({n}))",
            "        self.next(self.inc, foreach='items')",
            "",
            "    @step",
            "    def inc(self):",
            "        self.x = self.input + 1",
            "        self.next(self.join)",
            "",
            "    @step",
            "    def join(self, inputs):",
            "        self.total = sum(i.x for i in inputs)",
            "        self.next(self.end)",
            "",
            "    @step",
            "    def end(self):",
            "        print('ANSWER', self.total)",
            "",
        ]
    lines += ["", "if __name__ == '__main__':", "    BenchFlow()", ""]
    return "\n".join(lines)


def metaflow(shape: str, n: int) -> dict[str, Any]:
    import metaflow as metaflow_module

    with tempfile.TemporaryDirectory(prefix="bench-metaflow-") as work:
        flow = Path(work) / "bench_flow.py"
        flow.write_text(_metaflow_source(shape, n))
        env = {**os.environ, "USERNAME": "bench", "METAFLOW_HOME": work, "METAFLOW_DEFAULT_DATASTORE": "local"}
        command = [sys.executable, str(flow), "--no-pylint", "run", f"--max-num-splits={max(n, 100)}"]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"metaflow run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    answer = next(int(line.split()[-1]) for line in done.stdout.splitlines() if "ANSWER" in line)
    return {"tool": "metaflow", "version": metaflow_module.__version__, "seconds": seconds, "answer": answer}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tool", choices=["prefect", "metaflow"])
    parser.add_argument("shape", choices=["chain", "fanout"])
    parser.add_argument("n", type=int)
    args = parser.parse_args()
    run = prefect if args.tool == "prefect" else metaflow
    print(json.dumps(run(args.shape, args.n)))


if __name__ == "__main__":
    main()
