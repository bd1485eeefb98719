"""Pipeline schedules and their firings: when a pipeline runs on its own, and each time it was started.

A schedule names a pipeline (`module:function` or `path.py:function`), its parameters and executor, and
what starts it: a cron expression (UTC), new versions of a dataset, or an event another capability sends
(a monitor alert). Each start is a `Firing` with a key unique within its schedule (`cron:<tick ms>`,
`dataset:<digest>`, `alert:<id>`), which is what makes a tick fire once however many servers see it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FIRING_STATES", "OPEN_STATES", "Firing", "Schedule", "firing_from_json", "schedule_from_json"]

FIRING_STATES = ("pending", "running", "finished", "failed", "skipped")
"""pending: claimed, the run not started yet; running: its run started; finished/failed: its run ended;
skipped: covered by another firing of the same pass (a newer dataset version started the run)."""
OPEN_STATES = ("pending", "running")


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    project: str
    pipeline: str
    """Where the pipeline is: `module:function` or `path.py:function`, as for `loopml pipeline run`."""
    params: dict[str, Any]
    executor: str
    cron: str | None
    dataset: str | None
    """Run when a new version of this dataset is logged."""
    created_at: int
    created_by: str
    last_tick: int | None
    """The last cron tick handled (ms); ticks after it and not after now are due."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Firing:
    id: int
    schedule: str
    project: str
    key: str
    state: str
    reason: str
    """Why it fired ("cron tick 2026-12-05T02:00:00Z"), and, once it ended badly, why it failed."""
    context: dict[str, Any]
    """What the trigger hands the run (the tick, the dataset digest, the alert)."""
    run_id: str | None
    holder: str | None
    fired_at: int
    heartbeat_at: int
    ended_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def schedule_from_json(data: dict[str, Any]) -> Schedule:
    return Schedule(**{name: data[name] for name in Schedule.__dataclass_fields__})


def firing_from_json(data: dict[str, Any]) -> Firing:
    return Firing(**{name: data[name] for name in Firing.__dataclass_fields__})
