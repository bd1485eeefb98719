"""The Ray executor against a real Ray started on this machine: the same results, cache, failures and timeouts
as the local executors; resources per step; clear errors for a missing cluster and an unreachable store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

# The executor conformance suite, run here against Ray (its `executor` fixture is this module's).
from test_pipeline_executors import (
    test_a_finished_attempt_stores_its_output_content_addressed as test_conformance_output,
)
from test_pipeline_executors import (
    test_an_attempt_over_its_timeout_is_timed_out_without_output as test_conformance_timeout,
)
from test_pipeline_executors import (
    test_an_exception_is_a_failed_result_with_its_traceback as test_conformance_exception,
)
from test_pipeline_executors import (
    test_an_output_without_a_serializer_fails_unless_pickle_was_allowed as test_conformance_pickle,
)
from test_pipeline_executors import (
    test_inputs_are_read_from_the_artifact_store as test_conformance_inputs,
)
from test_pipeline_executors import (
    test_many_attempts_at_once_all_answer as test_conformance_many,
)

import loopml as lm
from loopml.errors import ExecutorUnavailable, InvalidPipeline
from loopml.pipelines import Executor, executor_for

pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'loopml[ray]')")

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

STEPS = """
import time

import loopml as lm


@lm.step
def square(x: int) -> int:
    return x * x


@lm.step(cpus=1, memory="64MB")
def total(values: list[int]) -> int:
    print(f"summing {len(values)} values")
    return sum(values)


@lm.pipeline
def squares(n: int = 5):
    return total(square.map([{"x": i} for i in range(n)]))


@lm.step
def broken(x: int) -> int:
    raise ValueError(f"no data for {x}")


@lm.step
def fine(x: int) -> int:
    return x + 1


@lm.pipeline
def half_broken():
    broken(1)
    return fine(1)


@lm.step(timeout=1)
def slow(x: int) -> int:
    time.sleep(60)
    return x


@lm.pipeline
def too_slow():
    return slow(1)


@lm.step(gpus=4)
def needs_gpus(x: int) -> int:
    return x


@lm.pipeline
def on_gpus():
    return needs_gpus(1)
"""


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    import importlib.util

    ray = pytest.importorskip("ray")
    folder = tmp_path_factory.mktemp("ray-steps")
    source = folder / "ray_steps.py"
    source.write_text(textwrap.dedent(STEPS))
    # The workers import the steps' module by name, as on a real cluster where the code is installed.
    here = str(Path(__file__).parent)  # pipeline_flows, the conformance suite's steps
    path = os.pathsep.join(p for p in (str(folder), here, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(runtime_env={"env_vars": {"PYTHONPATH": path}}, log_to_driver=False, configure_logging=False)
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location("ray_steps", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ray_steps"] = module
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("ray_steps", None)
        ray.shutdown()


@pytest.fixture
def executor(steps: object) -> Iterator[Executor]:
    made = executor_for("ray")
    yield made
    made.close()


__all__ = [
    "test_conformance_exception",
    "test_conformance_inputs",
    "test_conformance_many",
    "test_conformance_output",
    "test_conformance_pickle",
    "test_conformance_timeout",
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[lm.Client]:
    with lm.Client(home=tmp_path / "home") as client:
        yield client


def test_a_pipeline_runs_on_ray_and_reruns_from_the_cache(steps: object, client: lm.Client) -> None:
    run = steps.squares.run(n=6, executor="ray", client=client)  # type: ignore[attr-defined]
    assert run.status == "FINISHED"
    assert run.result == sum(i * i for i in range(6))
    assert "summing 6 values" in client.pipelines.logs(run.id, "total")
    again = steps.squares.run(n=6, executor="ray", client=client)  # type: ignore[attr-defined]
    assert again.result == run.result
    assert all(s.cached_from is not None for s in again.steps.values()), [s.decision for s in again.steps.values()]


def test_a_failing_step_fails_the_run_and_the_others_finish(steps: object, client: lm.Client) -> None:
    run = steps.half_broken.run(executor="ray", client=client)  # type: ignore[attr-defined]
    assert run.status == "FAILED"
    states = run.steps
    assert states["fine"].state.value == "finished"
    assert "ValueError: no data for 1" in (states["broken"].error or "")
    assert "raise ValueError" in (states["broken"].traceback or "")


def test_a_step_over_its_timeout_is_stopped(steps: object, client: lm.Client) -> None:
    run = steps.too_slow.run(executor="ray", client=client)  # type: ignore[attr-defined]
    assert run.status == "FAILED"
    [slow] = run.steps.values()
    assert slow.state.value == "timed_out"
    assert "timeout of 1 s" in (slow.error or "")


def test_a_step_asking_for_more_than_the_cluster_has_is_refused(steps: object, client: lm.Client) -> None:
    with pytest.raises(InvalidPipeline, match="step 'needs_gpus' asks for gpus=4 but the whole Ray cluster has 0"):
        steps.on_gpus.run(executor="ray", client=client)  # type: ignore[attr-defined]


def test_a_local_store_is_refused_for_a_remote_cluster() -> None:
    from loopml.pipelines.ray_executor import RayExecutor

    with pytest.raises(InvalidPipeline, match=r"workers of the remote Ray cluster at ray://203\.0\.113\.5:10001"):
        RayExecutor(address="ray://203.0.113.5:10001", artifact_root="file:///srv/loopml/artifacts")


def test_a_missing_cluster_is_a_clear_error_within_seconds(tmp_path: Path) -> None:
    # In a fresh process: this test process is already connected to the local Ray.
    code = textwrap.dedent(
        """
        from loopml.pipelines import executor_for
        from loopml.errors import ExecutorUnavailable
        try:
            executor_for("ray", address="127.0.0.1:1")
        except ExecutorUnavailable as error:
            print("ERROR", error)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "ERROR could not reach a Ray cluster at '127.0.0.1:1'" in done.stdout, done.stderr[-2000:]
    assert "ray start --head" in done.stdout
    assert ExecutorUnavailable.code == "executor_unavailable"
