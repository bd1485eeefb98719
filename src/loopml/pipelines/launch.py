"""How the scheduler starts a scheduled pipeline: load it by reference and run it to its end, as the schedule's
project, tagged with its firing so a run whose server died is found even before its start was recorded."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from loopml.domain import Principal, Role, RunStatus
from loopml.domain.schedules import Firing, Schedule
from loopml.store.schedules import FIRING_TAG

__all__ = ["PipelineLauncher"]


class PipelineLauncher:
    """A `Launcher` over a `PipelineService`: `executor_options` go to every run's executor (the Ray address)."""

    def __init__(self, service: Any, executor_options: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.service = service
        self.executor_options = {k: dict(v) for k, v in (executor_options or {}).items()}

    def __call__(self, schedule: Schedule, firing: Firing, started: Callable[[str], None]) -> RunStatus:
        from loopml.pipelines.loading import load_pipeline
        from loopml.pipelines.runner import run_pipeline

        pipeline = load_pipeline(schedule.pipeline)
        principal = Principal(actor=f"schedule:{schedule.name}", role=Role.EDITOR, project=schedule.project)
        told: list[str] = []

        def on_change(record: Any, _steps: Any) -> None:
            if not told:
                told.append(record.run_id)
                started(record.run_id)

        trigger = {**firing.context, "kind": "schedule", "schedule": schedule.name, "firing": firing.key}
        record = run_pipeline(
            self.service,
            principal,
            pipeline,
            schedule.params,
            schedule.executor,
            trigger=trigger,
            project=schedule.project,
            tags={FIRING_TAG: str(firing.id)},
            executor_options=self.executor_options.get(schedule.executor),
            on_change=on_change,
        )
        if not told:
            started(record.run_id)
        return RunStatus(record.status)
