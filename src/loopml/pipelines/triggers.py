"""What starts a scheduled pipeline: cron ticks, new versions of a dataset, and events pushed by other
capabilities. A trigger only says what is due (a key, a reason, a context); claiming the key is the store's
job, once, however many servers ask.

Another capability adds a polled trigger with `register_trigger(kind, trigger)`; an event that happens
elsewhere (a monitor alert) is pushed with `ScheduleService.fire(principal, schedule, key, ...)` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from loopml.domain.schedules import Schedule
from loopml.errors import InvalidInput

__all__ = ["Due", "Trigger", "due_cron", "register_trigger", "trigger_kinds", "validate_cron"]

MAX_COUNTED_TICKS = 10_000
"""Missed ticks are counted up to this many for the reason text; only the latest one runs anyway."""


@dataclass(frozen=True, slots=True)
class Due:
    """A firing to claim: `key` unique within the schedule; `last_tick` moves the schedule's cron position."""

    key: str
    reason: str
    context: dict[str, Any] = field(default_factory=dict)
    last_tick: int | None = None
    covers: tuple[str, ...] = ()
    """Keys this firing makes unnecessary (older dataset versions seen in the same pass): claimed as skipped."""


Trigger = Callable[[Any, Schedule, int], list[Due]]
"""`trigger(unit, schedule, now_ms)`: what is due for `schedule` now, read through the store unit."""


def validate_cron(expression: str) -> str:
    """The expression, stripped, if croniter reads it (5 fields, or 6 with seconds last); else InvalidInput."""
    from croniter import croniter

    text = " ".join(str(expression).split())
    fields = len(text.split(" ")) if text else 0
    if fields not in (5, 6) or not croniter.is_valid(text):
        raise InvalidInput(
            f"invalid cron expression {expression!r}: use five fields, minute hour day-of-month month "
            "day-of-week (e.g. '0 2 * * *' for 02:00 UTC every day), or six with seconds last"
        )
    return text


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def due_cron(expression: str, after_ms: int, now_ms: int) -> tuple[int, int] | None:
    """The latest tick in (after_ms, now_ms] and how many ticks fell in that range (at most
    MAX_COUNTED_TICKS), or None when no tick is due."""
    from croniter import croniter

    start = datetime.fromtimestamp(after_ms / 1000, UTC)
    ticks = croniter(expression, start)
    first = int(ticks.get_next(datetime).timestamp() * 1000)
    if first > now_ms:
        return None
    latest = int(
        croniter(expression, datetime.fromtimestamp(now_ms / 1000, UTC) + timedelta(milliseconds=1))
        .get_prev(datetime)
        .timestamp()
        * 1000
    )
    count, tick = 1, first
    while count < MAX_COUNTED_TICKS and tick < latest:
        tick = int(ticks.get_next(datetime).timestamp() * 1000)
        count += 1
    return latest, count


def cron_trigger(unit: Any, schedule: Schedule, now_ms: int) -> list[Due]:  # noqa: ARG001 - the Trigger shape
    if schedule.cron is None:
        return []
    after = schedule.last_tick if schedule.last_tick is not None else schedule.created_at
    found = due_cron(schedule.cron, after, now_ms)
    if found is None:
        return []
    tick, count = found
    reason = f"cron {schedule.cron!r}: tick {_iso(tick)}"
    if count > 1:
        missed = f"{count}" if count < MAX_COUNTED_TICKS else f"at least {count}"
        reason += f" ({missed} ticks passed while no server ran the schedule; it ran once, for the latest)"
    return [Due(f"cron:{tick}", reason, {"kind": "cron", "tick": tick, "ticks": count}, last_tick=tick)]


def dataset_trigger(unit: Any, schedule: Schedule, now_ms: int) -> list[Due]:  # noqa: ARG001 - the Trigger shape
    if schedule.dataset is None:
        return []
    seen = unit.schedules.fired_keys(schedule.name, "dataset:")
    new = [(digest, at) for digest, at in unit.schedules.dataset_versions(schedule.dataset, schedule.created_at)]
    new = [(digest, at) for digest, at in new if f"dataset:{digest}" not in seen]
    if not new:
        return []
    digest, _ = new[-1]
    older = tuple(f"dataset:{d}" for d, _ in new[:-1])
    reason = f"a new version of dataset {schedule.dataset!r} was logged ({digest[:12]})"
    if older:
        reason += f"; {len(older)} older new version(s) seen in the same pass are covered by this run"
    context = {"kind": "dataset", "dataset": schedule.dataset, "digest": digest}
    return [Due(f"dataset:{digest}", reason, context, covers=older)]


_TRIGGERS: dict[str, Trigger] = {"cron": cron_trigger, "dataset": dataset_trigger}


def register_trigger(kind: str, trigger: Trigger) -> None:
    """Poll `trigger` for every schedule on each pass of the scheduler (it returns [] when not concerned)."""
    _TRIGGERS[kind] = trigger


def trigger_kinds() -> dict[str, Trigger]:
    return dict(_TRIGGERS)
