"""Schedules of pipelines: create, read, delete, and the trigger point other capabilities push events into.

A schedule runs inside `loopml server` (`PipelineScheduler`); this service only writes and reads what the
scheduler acts on, so it works the same embedded and behind the REST API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from loopml.domain import Principal, Role
from loopml.domain.schedules import Firing, Schedule
from loopml.domain.validation import check_name
from loopml.errors import InvalidInput, PermissionDenied, ScheduleNotFound
from loopml.pipelines.triggers import validate_cron
from loopml.store import MetadataStore
from loopml.store.audit import now_ms

__all__ = ["ScheduleService"]

MAX_KEY = 512
_SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,249}$")


def check_schedule_name(name: object) -> str:
    """A schedule name is a segment of REST paths and CLI arguments: letters, digits, `_`, `.`, `-`."""
    if not isinstance(name, str) or not _SCHEDULE_NAME.match(name):
        raise InvalidInput(
            f"schedule name {name!r} is not valid: start with a letter or digit, then use up to 249 letters, "
            "digits, '_', '.' or '-' (e.g. the pipeline's name, nightly)"
        )
    return name


def check_pipeline_ref(ref: object) -> str:
    """`module:function` or `path.py:function`."""
    text = str(ref).strip() if isinstance(ref, str) else ""
    where, _, function = text.rpartition(":")
    if not where or not function or not all(part.isidentifier() for part in function.split(".")):
        raise InvalidInput(
            f"pipeline {ref!r} is not `module:function` or `path/to/file.py:function` "
            "(e.g. examples/bike/pipeline.py:nightly)"
        )
    return text


def check_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    values = dict(params or {})
    if not all(isinstance(key, str) and key.isidentifier() for key in values):
        raise InvalidInput("schedule params must be a mapping of parameter names (identifiers) to values")
    try:
        orjson.dumps(values)
    except TypeError as error:
        raise InvalidInput(f"schedule params must be JSON values (str, numbers, lists, dicts): {error}") from None
    return values


class ScheduleService:
    def __init__(self, store: MetadataStore, default_project: str = "default", refs: Any = None) -> None:
        self.store = store
        self.default_project = default_project
        self.refs = refs
        """A `RefPolicy`: the server lets a schedule name only pipelines under its roots and modules."""

    def create_schedule(
        self,
        principal: Principal,
        name: str,
        pipeline: str,
        *,
        cron: str | None = None,
        dataset: str | None = None,
        params: Mapping[str, Any] | None = None,
        executor: str = "process",
        project: str | None = None,
    ) -> Schedule:
        """Run `pipeline` on `cron` ticks (UTC) and/or when a new version of `dataset` is logged. Ticks before
        now are not run: the first run is the next tick."""
        principal.require(Role.EDITOR)
        name = check_schedule_name(name)
        home = project or principal.project or self.default_project
        if not principal.can_see(home):
            raise PermissionDenied(f"the token in use is scoped to project {principal.project!r}, not {home!r}")
        if cron is None and dataset is None:
            raise InvalidInput("a schedule needs a trigger: a cron expression, a dataset name, or both")
        from loopml.pipelines.executor import executor_names

        if executor not in executor_names():
            raise InvalidInput(f"unknown executor {executor!r}: use one of {', '.join(executor_names())}")
        at = now_ms()
        schedule = Schedule(
            name=name,
            project=home,
            pipeline=self.refs.resolve(pipeline) if self.refs is not None else check_pipeline_ref(pipeline),
            params=check_params(params),
            executor=executor,
            cron=None if cron is None else validate_cron(cron),
            dataset=None if dataset is None else check_name("dataset", dataset),
            created_at=at,
            created_by=principal.actor,
            last_tick=at if cron is not None else None,
        )
        with self.store.write(principal.actor) as unit:
            return unit.schedules.create(schedule)

    def schedules(self, principal: Principal) -> list[Schedule]:
        with self.store.read() as unit:
            return [s for s in unit.schedules.schedules(principal.project) if principal.can_see(s.project)]

    def get_schedule(self, principal: Principal, name: str) -> Schedule:
        with self.store.read() as unit:
            return self._visible(principal, unit.schedules.get(name))

    def delete_schedule(self, principal: Principal, name: str) -> Schedule:
        """Stop firing `name`; a run it started goes on to its end."""
        principal.require(Role.EDITOR)
        with self.store.write(principal.actor) as unit:
            schedule = self._visible(principal, unit.schedules.get(name))
            unit.schedules.delete(schedule)
            return schedule

    def firings(self, principal: Principal, name: str | None = None, limit: int = 100) -> list[Firing]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be an integer from 1 to 1000, got {limit!r}")
        with self.store.read() as unit:
            if name is not None:
                self._visible(principal, unit.schedules.get(name))
            return [f for f in unit.schedules.firings(name, limit=limit) if principal.can_see(f.project)]

    def fire(
        self,
        principal: Principal,
        name: str,
        key: str,
        reason: str,
        context: Mapping[str, Any] | None = None,
    ) -> Firing | None:
        """The trigger point for events (a monitor alert, a webhook): start schedule `name` once for `key`.
        The server's scheduler starts the run on its next pass; the same key again returns None (an event
        delivered twice runs the pipeline once)."""
        principal.require(Role.EDITOR)
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY or ":" not in key:
            raise InvalidInput(
                f"a firing key is 'kind:id' (e.g. 'alert:42'), at most {MAX_KEY} characters; got {key!r}"
            )
        if key.split(":", 1)[0] in ("cron", "dataset"):
            raise InvalidInput("keys starting with 'cron:' or 'dataset:' belong to the scheduler's own triggers")
        values = check_params(context)
        with self.store.write(principal.actor) as unit:
            schedule = self._visible(principal, unit.schedules.get(name))
            return unit.schedules.claim(schedule, key, str(reason), values, holder=None, at=now_ms())

    @staticmethod
    def _visible(principal: Principal, schedule: Schedule) -> Schedule:
        if not principal.can_see(schedule.project):
            raise ScheduleNotFound(f"no pipeline schedule named {schedule.name!r}")
        return schedule
