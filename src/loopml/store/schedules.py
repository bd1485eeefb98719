"""Pipeline schedules and their firings. A firing is claimed by inserting its (schedule, key) row, in the
transaction that also moves the schedule's `last_tick`: a second server claiming the same key inserts
nothing, so each tick or dataset version fires once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Row, delete, select, update

from loopml.domain.schedules import OPEN_STATES, Firing, Schedule
from loopml.errors import AlreadyExists, ScheduleNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.schema import datasets, pipeline_firings, pipeline_schedules, runs, tags
from loopml.store.upsert import insert_if_missing

__all__ = ["FIRING_TAG", "ScheduleRepository"]

FIRING_TAG = "loopml.schedule.firing"
"""The tag a scheduled run carries: the id of its firing, so a run whose start was not yet recorded is found."""


def _json(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _schedule(row: Row[Any]) -> Schedule:
    return Schedule(
        name=row.name,
        project=row.project,
        pipeline=row.pipeline,
        params=orjson.loads(row.params),
        executor=row.executor,
        cron=row.cron,
        dataset=row.dataset,
        created_at=row.created_at,
        created_by=row.created_by,
        last_tick=row.last_tick,
    )


_FIRING_COLUMNS = (
    pipeline_firings,
    pipeline_schedules.c.name.label("schedule"),
    pipeline_schedules.c.project,
)


def _firing(row: Row[Any]) -> Firing:
    return Firing(
        id=row.id,
        schedule=row.schedule,
        project=row.project,
        key=row.key,
        state=row.state,
        reason=row.reason,
        context=orjson.loads(row.context),
        run_id=row.run_id,
        holder=row.holder,
        fired_at=row.fired_at,
        heartbeat_at=row.heartbeat_at,
        ended_at=row.ended_at,
    )


class ScheduleRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def create(self, schedule: Schedule) -> Schedule:
        row = schedule.to_json()
        row["params"] = _json(schedule.params)
        if not insert_if_missing(self._conn, pipeline_schedules, row, ("name",)):
            raise AlreadyExists(f"a schedule named {schedule.name!r} exists; unschedule it first or pick another name")
        self._audit.record(
            "pipeline_schedule.create", "pipeline_schedule", schedule.name, after=schedule.to_json(),
            project=schedule.project,
        )  # fmt: skip
        return schedule

    def get(self, name: str) -> Schedule:
        row = self._conn.execute(select(pipeline_schedules).where(pipeline_schedules.c.name == name)).one_or_none()
        if row is None:
            raise ScheduleNotFound(f"no pipeline schedule named {name!r}")
        return _schedule(row)

    def schedules(self, project: str | None = None) -> list[Schedule]:
        query = select(pipeline_schedules).order_by(pipeline_schedules.c.name)
        if project is not None:
            query = query.where(pipeline_schedules.c.project == project)
        return [_schedule(row) for row in self._conn.execute(query)]

    def delete(self, schedule: Schedule) -> None:
        ids = select(pipeline_schedules.c.id).where(pipeline_schedules.c.name == schedule.name)
        self._conn.execute(delete(pipeline_firings).where(pipeline_firings.c.schedule_id.in_(ids.scalar_subquery())))
        self._conn.execute(delete(pipeline_schedules).where(pipeline_schedules.c.name == schedule.name))
        self._audit.record(
            "pipeline_schedule.delete", "pipeline_schedule", schedule.name, before=schedule.to_json(),
            project=schedule.project,
        )  # fmt: skip

    def claim(
        self,
        schedule: Schedule,
        key: str,
        reason: str,
        context: dict[str, Any],
        holder: str | None,
        at: int,
        *,
        last_tick: int | None = None,
        state: str = "pending",
    ) -> Firing | None:
        """Insert the firing (schedule, key); None if it was claimed before (by anyone). With `last_tick`, the
        schedule's cron position moves in the same transaction. A firing with no `holder` waits for a server's
        scheduler to adopt and start it."""
        schedule_id = self._conn.execute(
            select(pipeline_schedules.c.id).where(pipeline_schedules.c.name == schedule.name)
        ).scalar_one_or_none()
        if schedule_id is None:
            raise ScheduleNotFound(f"no pipeline schedule named {schedule.name!r}")
        row = {
            "schedule_id": schedule_id,
            "key": key,
            "state": state,
            "reason": reason,
            "context": _json(context),
            "run_id": None,
            "holder": holder,
            "fired_at": at,
            "heartbeat_at": at,
            "ended_at": at if state not in OPEN_STATES else None,
        }
        if last_tick is not None:
            self._conn.execute(
                update(pipeline_schedules).where(pipeline_schedules.c.id == schedule_id).values(last_tick=last_tick)
            )
        if not insert_if_missing(self._conn, pipeline_firings, row, ("schedule_id", "key")):
            return None
        firing = self._firing_by_key(schedule_id, key)
        self._audit.record(
            "pipeline_schedule.fire", "pipeline_schedule", schedule.name,
            after={"key": key, "state": state, "reason": reason, "holder": holder}, project=schedule.project,
        )  # fmt: skip
        return firing

    def _firing_by_key(self, schedule_id: int, key: str) -> Firing:
        row = self._conn.execute(
            select(*_FIRING_COLUMNS)
            .join(pipeline_schedules, pipeline_schedules.c.id == pipeline_firings.c.schedule_id)
            .where(pipeline_firings.c.schedule_id == schedule_id, pipeline_firings.c.key == key)
        ).one()
        return _firing(row)

    def firings(self, schedule: str | None = None, states: Sequence[str] = (), limit: int = 100) -> list[Firing]:
        query = (
            select(*_FIRING_COLUMNS)
            .join(pipeline_schedules, pipeline_schedules.c.id == pipeline_firings.c.schedule_id)
            .order_by(pipeline_firings.c.id.desc())
            .limit(limit)
        )
        if schedule is not None:
            query = query.where(pipeline_schedules.c.name == schedule)
        if states:
            query = query.where(pipeline_firings.c.state.in_(list(states)))
        return [_firing(row) for row in self._conn.execute(query)]

    def fired_keys(self, schedule: str, prefix: str) -> set[str]:
        rows = self._conn.execute(
            select(pipeline_firings.c.key)
            .join(pipeline_schedules, pipeline_schedules.c.id == pipeline_firings.c.schedule_id)
            .where(pipeline_schedules.c.name == schedule, pipeline_firings.c.key.startswith(prefix, autoescape=True))
        )
        return {str(row.key) for row in rows}

    def started(self, firing_id: int, run_id: str, holder: str) -> None:
        self._conn.execute(
            update(pipeline_firings)
            .where(pipeline_firings.c.id == firing_id, pipeline_firings.c.holder == holder)
            .values(state="running", run_id=run_id, heartbeat_at=now_ms())
        )

    def heartbeat(self, holder: str, at: int) -> int:
        """Renew the heartbeat of every open firing `holder` runs; how many it renewed."""
        done = self._conn.execute(
            update(pipeline_firings)
            .where(pipeline_firings.c.holder == holder, pipeline_firings.c.state.in_(OPEN_STATES))
            .values(heartbeat_at=at)
        )
        return int(done.rowcount)

    def end(self, firing: Firing, state: str, reason: str | None = None, *, holder: str | None = None) -> bool:
        """Move an open firing to `state`; False if it was no longer open (or, with `holder`, not its own)."""
        query = update(pipeline_firings).where(
            pipeline_firings.c.id == firing.id, pipeline_firings.c.state.in_(OPEN_STATES)
        )
        if holder is not None:
            query = query.where(pipeline_firings.c.holder == holder)
        values: dict[str, Any] = {"state": state, "ended_at": now_ms()}
        if reason is not None:
            values["reason"] = reason
        if self._conn.execute(query.values(**values)).rowcount != 1:
            return False
        self._audit.record(
            "pipeline_schedule.firing_end", "pipeline_schedule", firing.schedule,
            after={"key": firing.key, "state": state, "reason": reason or firing.reason, "run_id": firing.run_id},
            project=firing.project,
        )  # fmt: skip
        return True

    def stale(self, before: int) -> list[Firing]:
        """Open firings whose server stopped renewing their heartbeat before `before` (ms)."""
        rows = self._conn.execute(
            select(*_FIRING_COLUMNS)
            .join(pipeline_schedules, pipeline_schedules.c.id == pipeline_firings.c.schedule_id)
            .where(
                pipeline_firings.c.state.in_(OPEN_STATES),
                pipeline_firings.c.holder.is_not(None),
                pipeline_firings.c.heartbeat_at < before,
            )
            .order_by(pipeline_firings.c.id)
        )
        return [_firing(row) for row in rows]

    def held(self, holder_prefix: str) -> list[Firing]:
        """Open firings held by servers whose holder id starts with `holder_prefix` (a host)."""
        rows = self._conn.execute(
            select(*_FIRING_COLUMNS)
            .join(pipeline_schedules, pipeline_schedules.c.id == pipeline_firings.c.schedule_id)
            .where(
                pipeline_firings.c.state.in_(OPEN_STATES),
                pipeline_firings.c.holder.startswith(holder_prefix, autoescape=True),
            )
        )
        return [_firing(row) for row in rows]

    def unowned(self) -> list[Firing]:
        """Pending firings no server has started yet, oldest first."""
        rows = self._conn.execute(
            select(*_FIRING_COLUMNS)
            .join(pipeline_schedules, pipeline_schedules.c.id == pipeline_firings.c.schedule_id)
            .where(pipeline_firings.c.state == "pending", pipeline_firings.c.holder.is_(None))
            .order_by(pipeline_firings.c.id)
        )
        return [_firing(row) for row in rows]

    def adopt(self, firing_id: int, holder: str, at: int) -> bool:
        """Make `holder` the server that starts pending firing `firing_id`; False if another adopted it."""
        done = self._conn.execute(
            update(pipeline_firings)
            .where(
                pipeline_firings.c.id == firing_id,
                pipeline_firings.c.state == "pending",
                pipeline_firings.c.holder.is_(None),
            )
            .values(holder=holder, heartbeat_at=at)
        )
        return int(done.rowcount) == 1

    def dataset_versions(self, name: str, since: int) -> list[tuple[str, int]]:
        """(digest, created_at) of the versions of dataset `name` logged at or after `since`, oldest first."""
        rows = self._conn.execute(
            select(datasets.c.digest, datasets.c.created_at)
            .where(datasets.c.name == name, datasets.c.created_at >= since)
            .order_by(datasets.c.created_at, datasets.c.digest)
        )
        return [(str(row.digest), int(row.created_at)) for row in rows]

    def running_runs_of(self, firing: Firing) -> list[str]:
        """Runs still RUNNING that firing `firing` started (its recorded run, and any run tagged with it)."""
        tagged = select(tags.c.run_id).where(tags.c.key == FIRING_TAG, tags.c.value == str(firing.id))
        ids = {str(row.run_id) for row in self._conn.execute(tagged)}
        if firing.run_id is not None:
            ids.add(firing.run_id)
        if not ids:
            return []
        rows = self._conn.execute(select(runs.c.id).where(runs.c.id.in_(sorted(ids)), runs.c.status == "RUNNING"))
        return sorted(str(row.id) for row in rows)
