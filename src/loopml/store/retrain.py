"""Retraining policies and loops. A loop is claimed by inserting its row with `active_policy` set (one active
loop per policy, by a unique constraint) and its (policy, trigger key) (one loop per trigger); every later
transition is a compare-and-set on the loop's state, so two servers, or a server and a restarted one, never
both move a loop, and each transition is one audit event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import Connection, Row, and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from loopml.domain.retrain import (
    ACTIVE_STATES,
    LoopEvent,
    RetrainLoop,
    RetrainPolicy,
    policy_from_json,
    policy_to_json,
)
from loopml.errors import AlreadyExists, RetrainLoopNotFound, RetrainPolicyNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.schema import retrain_loops, retrain_policies

__all__ = ["RetrainRepository"]


def _json(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _policy(row: Row[Any]) -> RetrainPolicy:
    spec = orjson.loads(row.spec)
    return policy_from_json({**spec, "last_tick": row.last_tick})


def _loop(row: Row[Any]) -> RetrainLoop:
    return RetrainLoop(
        id=row.id,
        policy=row.policy,
        project=row.project,
        state=row.state,
        trigger_key=row.trigger_key,
        reason=row.reason,
        context=orjson.loads(row.context),
        created_at=row.created_at,
        updated_at=row.updated_at,
        pipeline_run_id=row.pipeline_run_id,
        version=row.version,
        gate=None if row.gate is None else orjson.loads(row.gate),
        rollout=None if row.rollout is None else orjson.loads(row.rollout),
        error=row.error,
        holder=row.holder,
        heartbeat_at=row.heartbeat_at,
        events=tuple(LoopEvent(**e) for e in orjson.loads(row.events)),
    )


class RetrainRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    # -- policies --------------------------------------------------------------------------------------

    def create_policy(self, policy: RetrainPolicy) -> RetrainPolicy:
        spec = policy_to_json(policy)
        spec.pop("last_tick")
        dialect = sqlite if self._conn.dialect.name == "sqlite" else postgresql
        row = {"name": policy.name, "project": policy.project, "spec": _json(spec), "created_at": policy.created_at}
        inserted = self._conn.execute(
            dialect.insert(retrain_policies).values(**row).on_conflict_do_nothing().returning(retrain_policies.c.name)
        ).first()
        if inserted is None:
            raise AlreadyExists(
                f"a retraining policy named {policy.name!r} exists; delete it first (`loopml retrain delete "
                f"{policy.name}`) or pick another name"
            )
        self._audit.record("retrain_policy.create", "retrain_policy", policy.name, after=spec, project=policy.project)
        return policy

    def policies(self, project: str | None = None) -> list[RetrainPolicy]:
        query = select(retrain_policies).order_by(retrain_policies.c.name)
        if project is not None:
            query = query.where(retrain_policies.c.project == project)
        return [_policy(row) for row in self._conn.execute(query)]

    def policy(self, name: str, lock: bool = False) -> RetrainPolicy:
        query = select(retrain_policies).where(retrain_policies.c.name == name)
        if lock and self._conn.dialect.name != "sqlite":
            query = query.with_for_update()
        row = self._conn.execute(query).one_or_none()
        if row is None:
            raise RetrainPolicyNotFound(f"no retraining policy named {name!r} (`loopml retrain list` shows them)")
        return _policy(row)

    def delete_policy(self, policy: RetrainPolicy) -> None:
        self._conn.execute(delete(retrain_policies).where(retrain_policies.c.name == policy.name))
        self._audit.record("retrain_policy.delete", "retrain_policy", policy.name, project=policy.project)

    def move_tick(self, name: str, tick: int) -> None:
        self._conn.execute(update(retrain_policies).where(retrain_policies.c.name == name).values(last_tick=tick))

    # -- loops -----------------------------------------------------------------------------------------

    def claim(
        self, policy: RetrainPolicy, loop_id: str, key: str, reason: str, context: Mapping[str, Any], at: int
    ) -> RetrainLoop | None:
        """Start a loop for `key`; None when the policy has an active loop or `key` started one before."""
        event = LoopEvent("triggered", at, {"reason": reason, "key": key})
        row = {
            "id": loop_id,
            "policy": policy.name,
            "project": policy.project,
            "state": "triggered",
            "active_policy": policy.name,
            "trigger_key": key,
            "reason": reason,
            "context": _json(dict(context)),
            "events": _json([{"state": event.state, "at": event.at, "detail": event.detail}]),
            "created_at": at,
            "updated_at": at,
        }
        dialect = sqlite if self._conn.dialect.name == "sqlite" else postgresql
        inserted = self._conn.execute(
            dialect.insert(retrain_loops).values(**row).on_conflict_do_nothing().returning(retrain_loops.c.id)
        ).first()
        if inserted is None:
            return None
        loop = self.loop(loop_id)
        self._audit.record(
            "retrain_loop.triggered", "retrain_loop", loop_id,
            after={"policy": policy.name, "key": key, "reason": reason, "context": dict(context)},
            project=policy.project,
        )  # fmt: skip
        return loop

    def loop(self, loop_id: str) -> RetrainLoop:
        row = self._conn.execute(select(retrain_loops).where(retrain_loops.c.id == loop_id)).one_or_none()
        if row is None:
            raise RetrainLoopNotFound(f"no retraining loop {loop_id!r} (`loopml retrain runs POLICY` lists them)")
        return _loop(row)

    def loops(self, policy: str | None = None, project: str | None = None, limit: int = 100) -> list[RetrainLoop]:
        """Newest first."""
        query = select(retrain_loops).order_by(retrain_loops.c.created_at.desc(), retrain_loops.c.id).limit(limit)
        if policy is not None:
            query = query.where(retrain_loops.c.policy == policy)
        if project is not None:
            query = query.where(retrain_loops.c.project == project)
        return [_loop(row) for row in self._conn.execute(query)]

    def active(self) -> list[RetrainLoop]:
        query = (
            select(retrain_loops).where(retrain_loops.c.state.in_(ACTIVE_STATES)).order_by(retrain_loops.c.created_at)
        )
        return [_loop(row) for row in self._conn.execute(query)]

    def started_since(self, policy: str, since: int) -> int:
        """How many loops of `policy` started at or after `since` (the max-per-period guard)."""
        query = select(func.count()).where(retrain_loops.c.policy == policy, retrain_loops.c.created_at >= since)
        return int(self._conn.execute(query).scalar_one())

    def latest(self, policy: str) -> RetrainLoop | None:
        found = self.loops(policy, limit=1)
        return found[0] if found else None

    def transition(
        self,
        loop: RetrainLoop,
        state: str,
        detail: Mapping[str, Any] | None = None,
        *,
        at: int | None = None,
        error: str | None = None,
        **fields: Any,
    ) -> RetrainLoop | None:
        """Move `loop` from the state it was read in to `state` (with `fields`: pipeline_run_id, version, gate,
        rollout, holder, heartbeat_at); None if someone moved it first. Audited as `retrain_loop.<state>`."""
        when = now_ms() if at is None else at
        current = self.loop(loop.id)
        events = [*({"state": e.state, "at": e.at, "detail": e.detail} for e in current.events)]
        if state != current.state or detail:
            events.append({"state": state, "at": when, "detail": dict(detail or {})})
        values: dict[str, Any] = {"state": state, "updated_at": when, "events": _json(events)}
        if state not in ACTIVE_STATES:
            values["active_policy"] = None
            values["holder"] = None
        if error is not None:
            values["error"] = error
        for name, value in fields.items():
            values[name] = _json(value) if name in ("gate", "rollout") and value is not None else value
        moved = self._conn.execute(
            update(retrain_loops)
            .where(and_(retrain_loops.c.id == loop.id, retrain_loops.c.state == loop.state))
            .values(**values)
        )
        if moved.rowcount != 1:
            return None
        after = {"from": loop.state, **dict(detail or {})}
        if error is not None:
            after["error"] = error
        for name in ("pipeline_run_id", "version"):
            if name in fields:
                after[name] = fields[name]
        self._audit.record(f"retrain_loop.{state}", "retrain_loop", loop.id, after=after, project=loop.project)
        return self.loop(loop.id)

    def heartbeat(self, holder: str, at: int) -> None:
        self._conn.execute(
            update(retrain_loops)
            .where(retrain_loops.c.holder == holder, retrain_loops.c.state.in_(ACTIVE_STATES))
            .values(heartbeat_at=at)
        )
