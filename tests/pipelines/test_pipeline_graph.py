"""Building the DAG: handles, fan-out and fan-in, `after=`, and the errors that name their cause."""

from __future__ import annotations

from typing import Any

import pipeline_flows as flows
import pytest

import loopml as lm
from loopml.errors import InvalidPipeline
from loopml.pipelines import executor_for


def test_step_calls_inside_a_pipeline_build_the_dag_from_data_passing() -> None:
    graph = flows.arithmetic.build(n=3, log="unused")
    assert graph.order()[0] == "numbers"
    assert graph.order()[-1] == "report"
    assert graph.nodes["report"].upstream == ["doubled_sum", "scaled"]
    assert graph.nodes["numbers"].params == {"n": 3, "log": "unused"}
    assert graph.result.node == "report"


def test_map_fans_out_and_a_list_of_outputs_fans_in() -> None:
    graph = flows.grid.build(depths=[2, 4, 8])
    assert [n for n in graph.nodes if n.startswith("grid_point")] == ["grid_point[0]", "grid_point[1]", "grid_point[2]"]
    assert graph.nodes["grid_point[1]"].params == {"depth": 4}
    assert graph.nodes["best"].upstream == ["grid_point[0]", "grid_point[1]", "grid_point[2]"]


def test_after_orders_steps_without_passing_data() -> None:
    graph = flows.branches.build(flag="f", log="l")
    assert "after_fragile" in graph.nodes["report"].upstream
    assert "after_fragile" not in graph.nodes["report"].inputs


def test_a_cycle_through_after_names_the_cycle() -> None:
    @lm.step
    def first(x: int) -> int:
        return x

    @lm.step
    def second(x: int) -> int:
        return x

    @lm.pipeline
    def looped() -> Any:
        a = first(1, after=["second"])
        return second(a)

    with pytest.raises(InvalidPipeline, match=r"cycle: (first -> second -> first|second -> first -> second)"):
        looped.build()


def test_after_a_step_that_does_not_exist_is_refused() -> None:
    @lm.step
    def only(x: int) -> int:
        return x

    @lm.pipeline
    def dangling() -> Any:
        return only(1, after=["ghost"])

    with pytest.raises(InvalidPipeline, match="runs after 'ghost', which is not a step"):
        dangling.build()


def test_a_step_called_outside_a_pipeline_says_how_to_call_it() -> None:
    with pytest.raises(InvalidPipeline, match=r"called outside a pipeline.*numbers\.func"):
        flows.numbers(3, "log")
    assert len(flows.numbers.func(3, "/dev/null")) == 3  # the plain function still runs


def test_a_pipeline_is_run_not_called() -> None:
    with pytest.raises(InvalidPipeline, match=r"arithmetic\.run"):
        flows.arithmetic(n=3)


@pytest.mark.parametrize(
    ("call", "cause"),
    [
        (lambda: flows.numbers.map([3]), "outside a pipeline"),
        (lambda: flows.arithmetic.build(n=object()), "must be JSON-able"),
        (lambda: flows.arithmetic.build(m=3), "unexpected keyword argument 'm'"),
        (lambda: lm.step(retries=-1)(lambda: 1), "retries of step"),
        (lambda: lm.step(timeout=0)(lambda: 1), "timeout of step"),
        (lambda: lm.step(memory="lots")(lambda: 1), "memory must be"),
        (lambda: lm.step(serializer="yaml")(lambda: 1), "unknown serializer 'yaml'"),
        (lambda: executor_for("spark"), r"unknown executor 'spark': use one of .*inline.*process"),
        (lambda: executor_for("process", workers=3), "invalid options for the 'process' executor"),
    ],
)
def test_bad_input_is_a_clear_error(call: Any, cause: str) -> None:
    with pytest.raises(InvalidPipeline, match=cause):
        call()


def test_wrong_arguments_and_non_json_parameters_name_the_step() -> None:
    @lm.pipeline
    def wrong() -> Any:
        return flows.numbers(3, "log", "extra")

    with pytest.raises(InvalidPipeline, match="step 'numbers' called with the wrong arguments"):
        wrong.build()

    @lm.pipeline
    def unjsonable() -> Any:
        return flows.numbers({1, 2}, "log")

    with pytest.raises(InvalidPipeline, match="argument 'n' of step 'numbers' is a set"):
        unjsonable.build()


def test_resources_are_parsed_for_executors_that_place_work() -> None:
    @lm.step(cpus=2, gpus=1, memory="4GB")
    def heavy() -> int:
        return 1

    assert heavy.resources == {"cpus": 2, "gpus": 1, "memory": 4_000_000_000}
    assert lm.step(memory="512MiB")(lambda: 1).resources == {"memory": 512 * 2**20}
