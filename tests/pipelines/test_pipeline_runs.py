"""Running pipelines end to end on a real store (SQLite and PostgreSQL) and real worker processes."""

from __future__ import annotations

from pathlib import Path

import pipeline_flows as flows
import pytest

import loopml as lm
from loopml.errors import InvalidPipeline


def ran(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_a_run_records_every_step_as_a_nested_run_and_returns_the_result(
    client: lm.Client, tmp_path: Path, executor: str
) -> None:
    log = tmp_path / "ran.txt"
    run = flows.arithmetic.run(n=5, log=str(log), client=client, executor=executor)
    assert run.status == "FINISHED"
    assert run.result == {"total": 20.0, "max": 40.0}
    assert sorted(ran(log)) == ["doubled_sum", "numbers", "report", "scaled"]
    assert list(run.output("scaled")) == [0, 10, 20, 30, 40]
    parent = client.runs.get(run.id)
    assert parent.params == {"n": "5", "log": str(log)}
    assert parent.tags["loopml.pipeline"] == "arithmetic"
    assert parent.metrics == {"total": 20.0, "max": 40.0}  # the returned evaluation, on the pipeline run too
    report = run.steps["report"]
    nested = client.runs.get(report.run_id)
    assert nested.parent_run_id == run.id
    assert nested.status.value == "FINISHED"
    assert nested.metrics == {"total": 20.0, "max": 40.0}
    assert client.runs.get(run.steps["numbers"].run_id).params == {"n": "5", "log": str(log)}
    assert client.pipelines.logs(run.id, "numbers") == "making 5 numbers\n"
    assert [r.run_id for r in client.pipelines.runs("arithmetic")] == [run.id]


def test_a_second_run_is_served_from_the_cache_with_the_reason(client: lm.Client, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    first = flows.arithmetic.run(n=5, log=str(log), client=client, executor="inline")
    assert all(s.decision.startswith("miss: no earlier finished run") for s in first.steps.values())
    second = flows.arithmetic.run(n=5, log=str(log), client=client, executor="inline")
    assert len(ran(log)) == 4  # nothing ran again
    assert {s.state.value for s in second.steps.values()} == {"cached"}
    numbers = second.steps["numbers"]
    assert numbers.decision == f"hit: key {numbers.cache_key[:12]} matches step run {first.steps['numbers'].run_id[:8]}"
    assert second.result == first.result
    third = flows.arithmetic.run(n=6, log=str(log), client=client, executor="inline")
    assert third.steps["numbers"].decision == "miss: parameter `n` changed (5 -> 6)"
    assert third.steps["scaled"].decision.startswith("miss: input `df` changed")
    assert third.result == {"total": 30.0, "max": 50.0}


def test_cache_false_per_run_reruns_every_step(client: lm.Client, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    flows.arithmetic.run(n=3, log=str(log), client=client, executor="inline")
    again = flows.arithmetic.run(n=3, log=str(log), client=client, executor="inline", cache=False)
    assert len(ran(log)) == 8
    assert {s.decision for s in again.steps.values()} == {"disabled: cache=False for the run"}


def test_a_cache_hit_needs_the_outputs_to_still_exist(client: lm.Client, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    first = flows.arithmetic.run(n=3, log=str(log), client=client, executor="inline")
    client.backend.artifacts.delete(first.steps["scaled"].outputs[0]["digest"])  # type: ignore[attr-defined]
    again = flows.arithmetic.run(n=3, log=str(log), client=client, executor="inline")
    assert again.steps["numbers"].state.value == "cached"
    assert again.steps["scaled"].state.value == "finished"
    assert (
        again.steps["scaled"].decision
        == "miss: the outputs of the earlier run with this key are gone from the artifact store"
    )
    assert again.result == first.result


def test_a_failing_step_fails_the_run_and_independent_steps_finish(client: lm.Client, tmp_path: Path) -> None:
    log, flag = tmp_path / "ran.txt", tmp_path / "flag"
    flag.touch()
    run = flows.branches.run(flag=str(flag), log=str(log), client=client, executor="process")
    assert run.status == "FAILED"
    states = {name: s.state.value for name, s in run.steps.items()}
    assert states == {
        "numbers": "finished",
        "fragile": "failed",
        "after_fragile": "skipped",
        "doubled_sum": "finished",
        "scaled": "finished",
        "report": "skipped",
    }
    fragile = run.steps["fragile"]
    assert fragile.error == f"RuntimeError: flag {flag} is up"
    assert 'raise RuntimeError(f"flag {flag} is up")' in (fragile.traceback or "")
    assert fragile.outputs == []
    assert run.steps["after_fragile"].decision == "skipped: upstream step `fragile` did not finish"
    assert client.runs.get(fragile.run_id).status.value == "FAILED"
    assert client.runs.get(run.id).status.value == "FAILED"

    flag.unlink()
    before = ran(log)
    retried = client.pipelines.retry(run.id)
    assert retried.status == "FINISHED"
    assert retried.record.retry_of == run.id
    assert retried.record.trigger == {"kind": "retry", "run_id": run.id}
    assert sorted(ran(log)[len(before) :]) == ["after_fragile", "fragile", "report"]  # finished steps not rerun
    assert {n: s.state.value for n, s in retried.steps.items() if s.state.value == "cached"}.keys() == {
        "numbers",
        "doubled_sum",
        "scaled",
    }


def test_retries_with_backoff_until_the_step_succeeds(client: lm.Client, tmp_path: Path) -> None:
    marker = tmp_path / "attempts"
    run = flows.flaky_flow.run(marker=str(marker), client=client, executor="process")
    assert run.status == "FINISHED"
    assert run.result == "ok after 3 attempts"
    step = run.steps["flaky"]
    assert step.attempts == 3
    assert step.error is None


def test_retries_exhausted_keep_the_last_error(client: lm.Client, tmp_path: Path) -> None:
    marker = tmp_path / "attempts"
    marker.write_text("-5")  # needs 8 attempts; the step allows 3
    run = flows.flaky_flow.run(marker=str(marker), client=client, executor="inline")
    assert run.status == "FAILED"
    step = run.steps["flaky"]
    assert (step.attempts, step.state.value) == (3, "failed")
    assert step.error == "ConnectionError: attempt -2 lost its connection"


def test_a_timeout_and_a_sigkill_say_which_step_and_why(client: lm.Client) -> None:
    run = flows.hazards.run(seconds=60, client=client, executor="process")
    assert run.status == "FAILED"
    sleepy, killed, quick = run.steps["sleepy"], run.steps["killed"], run.steps["quick"]
    assert sleepy.state.value == "timed_out"
    assert sleepy.error == "the step did not finish within its timeout of 1 s and was stopped"
    assert killed.state.value == "killed"
    assert killed.error == "the worker process running the step killed by signal SIGKILL"
    assert sleepy.outputs == killed.outputs == []
    assert quick.state.value == "finished"  # the pool replaced the dead workers
    assert client.runs.get(killed.run_id).status.value == "KILLED"


def test_an_output_without_a_serializer_needs_an_explicit_opt_in(client: lm.Client) -> None:
    run = flows.opaque_flow.run(client=client, executor="inline")
    assert run.status == "FAILED"
    error = run.steps["opaque"].error or ""
    assert error.startswith("InvalidPipeline: step 'opaque' returned a pipeline_flows.Opaque, which no serializer")
    assert "@lm.step(pickle=True)" in error
    opted = flows.pickled_flow.run(client=client, executor="process")
    assert opted.status == "FINISHED"
    assert opted.result == 4
    assert opted.steps["opaque_opted_in"].outputs[0]["serializer"] == "cloudpickle"  # recorded on the step run


def test_fan_out_and_fan_in_run_in_parallel_workers(client: lm.Client) -> None:
    run = flows.grid.run(depths=[1, 2, 3], client=client, executor="process")
    assert run.status == "FINISHED"
    assert run.result == 45.0
    assert run.steps["best"].inputs["scores"][2]["serializer"] == "json"


def test_a_step_defined_in_a_function_runs_inline_and_is_refused_by_the_process_pool(client: lm.Client) -> None:
    @lm.step
    def local() -> int:
        return 7

    @lm.pipeline
    def local_flow() -> object:
        return local()

    assert local_flow.run(client=client, executor="inline").result == 7
    with pytest.raises(InvalidPipeline, match=r"a worker process cannot import it .*executor='inline'"):
        local_flow.run(client=client, executor="process")


def test_runs_by_reference_and_unknown_references(client: lm.Client, tmp_path: Path) -> None:
    source = tmp_path / "daily.py"
    source.write_text(
        "import loopml as lm\n\n"
        "@lm.step\ndef answer(x: int) -> int:\n    return x * 2\n\n"
        "@lm.pipeline\ndef daily(x: int = 1):\n    return answer(x)\n"
    )
    run = client.pipelines.run(f"{source}:daily", {"x": 21}, executor="process")
    assert run.status == "FINISHED"
    assert run.output("answer") == 42
    assert run.record.ref == f"{source}:daily"
    with pytest.raises(InvalidPipeline, match="has no attribute 'weekly'"):
        client.pipelines.run(f"{source}:weekly")
    with pytest.raises(InvalidPipeline, match="does not exist"):
        client.pipelines.run(f"{tmp_path / 'missing.py'}:daily")
    with pytest.raises(InvalidPipeline, match=r"module:function or path/to/file\.py:function"):
        client.pipelines.run("nocolon")


def test_two_runs_at_once_on_one_store_both_finish(client: lm.Client, tmp_path: Path) -> None:
    import threading

    logs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    results: dict[int, object] = {}

    def one(index: int) -> None:
        results[index] = flows.arithmetic.run(n=7, log=str(logs[index]), client=client, executor="process")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = [results[0], results[1]]
    assert [r.status for r in runs] == ["FINISHED", "FINISHED"]  # type: ignore[attr-defined]
    assert [r.result for r in runs] == [{"total": 42.0, "max": 60.0}] * 2  # type: ignore[attr-defined]
    assert client.audit.verify() == []  # the audit chain stayed one chain
    assert len(client.pipelines.runs("arithmetic")) == 2


def test_hostile_parameters_are_refused_with_the_limit(client: lm.Client) -> None:
    with pytest.raises(lm.errors.InvalidInput, match="param"):
        flows.arithmetic.run(n=3, log="x" * 9000, client=client, executor="inline")
    assert client.pipelines.runs("arithmetic") == []  # nothing half-started
    with pytest.raises(InvalidPipeline, match="must be JSON-able"):
        flows.arithmetic.run(n=float("nan"), client=client, executor="inline")


def test_a_step_with_cache_false_always_runs_and_a_dataset_input_is_logged(client: lm.Client, tmp_path: Path) -> None:
    log = tmp_path / "ran.txt"
    first = flows.uncached.run(log=str(log), client=client, executor="inline")
    second = flows.uncached.run(log=str(log), client=client, executor="inline")
    assert ran(log) == ["clock", "clock"]
    assert second.steps["clock"].decision == "disabled: step `clock` has cache=False"
    assert second.steps["table"].state.value == "cached"
    assert second.steps["rows"].state.value == "cached"  # the clock's output is the same bytes: a hit
    assert second.result == first.result == 4
    [dataset] = client.runs.datasets(first.steps["rows"].run_id)
    assert (dataset.name, dataset.rows, dataset.role, dataset.source) == ("table", 3, "training", "generated")


def test_a_script_that_runs_its_pipeline_unguarded_gets_a_clear_error(db_url: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import loopml as lm\n\n"
        "@lm.step\ndef one() -> int:\n    return 1\n\n"
        "@lm.pipeline\ndef flow():\n    return one()\n\n"
        "run = flow.run()\n"
        "print(run.status, run.steps['one'].error)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_HOME=str(tmp_path / "home"), LOOPML_DATABASE_URL=db_url)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    status, _, error = done.stdout.strip().partition(" ")
    assert status == "FAILED"  # once: the workers did not rerun the script as their main module
    assert "was started inside a step's worker process" in error
    assert 'guard the call with `if __name__ == "__main__":`' in error
