"""The executor conformance suite: every executor runs `StepTask`s to the same `StepResult`s.

An executor outside this package passes it by adding its name to EXECUTORS (with the options it needs).
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopml.artifacts import open_artifact_store
from loopml.errors import InvalidPipeline
from loopml.pipelines import ArtifactRef, Executor, FunctionRef, StepTask, executor_for

EXECUTORS: dict[str, dict[str, Any]] = {"inline": {}, "process": {"max_parallel": 2}}


@pytest.fixture(params=sorted(EXECUTORS))
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    made = executor_for(request.param, **EXECUTORS[request.param])
    yield made
    made.close()


def task(root: Path, function: str, params: dict[str, Any], **options: Any) -> StepTask:
    return StepTask(
        step=function,
        function=FunctionRef("pipeline_flows", function),
        params=params,
        inputs=options.pop("inputs", {}),
        artifact_root=str(root),
        **options,
    )


def test_a_finished_attempt_stores_its_output_content_addressed(executor: Executor, tmp_path: Path) -> None:
    result = executor.submit(task(tmp_path, "add_one", {"x": 41})).result(timeout=60)
    assert (result.status, result.error) == ("finished", None)
    [output] = result.outputs
    assert (output.serializer, output.size) == ("json", 2)
    assert output.digest == hashlib.sha256(b"42").hexdigest()
    blobs = open_artifact_store(str(tmp_path))
    assert b"".join(blobs.iter_chunks(output.digest)) == b"42"
    assert result.log == "adding one to 41\n"
    assert 0 < result.started_at <= result.ended_at


def test_inputs_are_read_from_the_artifact_store(executor: Executor, tmp_path: Path) -> None:
    blob = open_artifact_store(str(tmp_path)).put_bytes(b"9")
    ref = ArtifactRef("json", blob.digest, blob.size, "int")
    result = executor.submit(task(tmp_path, "add_one", {}, inputs={"x": ref})).result(timeout=60)
    assert result.outputs[0].digest == hashlib.sha256(b"10").hexdigest()


def test_an_exception_is_a_failed_result_with_its_traceback(executor: Executor, tmp_path: Path) -> None:
    result = executor.submit(task(tmp_path, "fail", {"message": "bad row 7"})).result(timeout=60)
    assert (result.status, result.error, result.outputs) == ("failed", "ValueError: bad row 7", ())
    assert "raise ValueError(message)" in (result.traceback or "")


def test_an_output_without_a_serializer_fails_unless_pickle_was_allowed(executor: Executor, tmp_path: Path) -> None:
    refused = executor.submit(task(tmp_path, "make_opaque", {})).result(timeout=60)
    assert refused.status == "failed"
    assert "which no serializer stores" in (refused.error or "")
    allowed = executor.submit(task(tmp_path, "make_opaque", {}, allow_pickle=True)).result(timeout=60)
    assert allowed.outputs[0].serializer == "cloudpickle"


def test_an_attempt_over_its_timeout_is_timed_out_without_output(executor: Executor, tmp_path: Path) -> None:
    result = executor.submit(task(tmp_path, "nap", {"seconds": 1.5}, timeout=0.5)).result(timeout=60)
    assert (result.status, result.outputs) == ("timed_out", ())
    assert "timeout of 0.5 s" in (result.error or "")
    after = executor.submit(task(tmp_path, "add_one", {"x": 1})).result(timeout=60)
    assert after.status == "finished"  # the executor goes on after a timeout


def test_many_attempts_at_once_all_answer(executor: Executor, tmp_path: Path) -> None:
    assert executor.max_parallel >= 1
    futures = [executor.submit(task(tmp_path, "add_one", {"x": i})) for i in range(20)]
    digests = [f.result(timeout=120).outputs[0].digest for f in futures]
    assert digests == [hashlib.sha256(str(i + 1).encode()).hexdigest() for i in range(20)]


def test_tasks_and_results_travel_by_pickle(tmp_path: Path) -> None:
    made = task(tmp_path, "add_one", {"x": 1}, timeout=3.0, resources={"cpus": 2})
    assert pickle.loads(pickle.dumps(made)) == made  # noqa: S301 (our own bytes, as a worker pipe carries them)


def test_a_closed_process_pool_refuses_work(tmp_path: Path) -> None:
    pool = executor_for("process", max_parallel=1)
    pool.close()
    with pytest.raises(InvalidPipeline, match="was closed"):
        pool.submit(task(tmp_path, "add_one", {"x": 1}))


def test_closing_a_pool_stops_an_attempt_in_flight(tmp_path: Path) -> None:
    pool = executor_for("process", max_parallel=1)
    running = pool.submit(task(tmp_path, "nap", {"seconds": 60}))
    queued = pool.submit(task(tmp_path, "add_one", {"x": 1}))
    while not running.running():
        pass
    pool.close()
    assert running.result(timeout=30).status == "killed"
    assert queued.cancelled()
