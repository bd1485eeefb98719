"""Pipelines: steps and pipelines as decorators, artifacts between steps, the cache, retries, lineage, and
the executors that run step attempts (`inline`, `process`, and `ray` when installed).

A service package: imports ports (`loopml.store`, `loopml.artifacts`), the domain and other services'
public modules; never the server, the CLI or the client. Names load on first use, so importing the
package for `@step` does not import the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_attributes

if TYPE_CHECKING:
    from loopml.pipelines.cache import code_fingerprint, components_of, explain_miss, key_of
    from loopml.pipelines.executor import (
        ArtifactRef,
        Executor,
        FunctionRef,
        InlineExecutor,
        ProcessExecutor,
        StepResult,
        StepTask,
        execute_task,
        executor_for,
        executor_names,
        register_executor,
    )
    from loopml.pipelines.graph import Graph, Pipeline, Step, StepOutput, pipeline, set_default_runner, step
    from loopml.pipelines.launch import PipelineLauncher
    from loopml.pipelines.loading import load_pipeline
    from loopml.pipelines.runner import run_pipeline
    from loopml.pipelines.scheduler import SCHEDULER_LEASE, PipelineScheduler
    from loopml.pipelines.schedules import ScheduleService
    from loopml.pipelines.serializers import Serializer, load_value, register_serializer
    from loopml.pipelines.service import Lineage, PipelineService, StepRecord
    from loopml.pipelines.submit import RefPolicy, RunLauncher, RunSweeper
    from loopml.pipelines.triggers import Due, register_trigger
    from loopml.pipelines.values import Dataset, Model

__all__ = [
    "SCHEDULER_LEASE",
    "ArtifactRef",
    "Dataset",
    "Due",
    "Executor",
    "FunctionRef",
    "Graph",
    "InlineExecutor",
    "Lineage",
    "Model",
    "Pipeline",
    "PipelineLauncher",
    "PipelineScheduler",
    "PipelineService",
    "ProcessExecutor",
    "RefPolicy",
    "RunLauncher",
    "RunSweeper",
    "ScheduleService",
    "Serializer",
    "Step",
    "StepOutput",
    "StepRecord",
    "StepResult",
    "StepTask",
    "code_fingerprint",
    "components_of",
    "execute_task",
    "executor_for",
    "executor_names",
    "explain_miss",
    "key_of",
    "load_pipeline",
    "load_value",
    "pipeline",
    "register_executor",
    "register_serializer",
    "register_trigger",
    "run_pipeline",
    "set_default_runner",
    "step",
]

_HOMES = {
    **dict.fromkeys(["code_fingerprint", "components_of", "explain_miss", "key_of"], "loopml.pipelines.cache"),
    **dict.fromkeys(
        [
            "ArtifactRef",
            "Executor",
            "FunctionRef",
            "InlineExecutor",
            "ProcessExecutor",
            "StepResult",
            "StepTask",
            "execute_task",
            "executor_for",
            "executor_names",
            "register_executor",
        ],
        "loopml.pipelines.executor",
    ),
    **dict.fromkeys(
        ["Graph", "Pipeline", "Step", "StepOutput", "pipeline", "set_default_runner", "step"], "loopml.pipelines.graph"
    ),
    "load_pipeline": "loopml.pipelines.loading",
    "PipelineLauncher": "loopml.pipelines.launch",
    **dict.fromkeys(["PipelineScheduler", "SCHEDULER_LEASE"], "loopml.pipelines.scheduler"),
    "ScheduleService": "loopml.pipelines.schedules",
    **dict.fromkeys(["Due", "register_trigger"], "loopml.pipelines.triggers"),
    "run_pipeline": "loopml.pipelines.runner",
    **dict.fromkeys(["Serializer", "load_value", "register_serializer"], "loopml.pipelines.serializers"),
    **dict.fromkeys(["Lineage", "PipelineService", "StepRecord"], "loopml.pipelines.service"),
    **dict.fromkeys(["Dataset", "Model"], "loopml.pipelines.values"),
    **dict.fromkeys(["RefPolicy", "RunLauncher", "RunSweeper"], "loopml.pipelines.submit"),
}

__getattr__ = lazy_attributes(__name__, _HOMES)
