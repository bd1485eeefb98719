"""The hash-chained audit log, written in the transaction of the mutation it records."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, FromClause, String, cast, exists, insert, inspect, select, update

from loopml.domain import AuditEvent
from loopml.errors import StoreUnavailable
from loopml.store.audit_scope import project_of
from loopml.store.schema import (
    audit_head,
    audit_log,
    datasets,
    deployments,
    experiments,
    model_versions,
    monitors,
    projects,
    registered_models,
    runs,
    tokens,
)

GENESIS = "0" * 64


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _canonical(value: dict[str, Any] | None) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def row_hash(
    seq: int,
    time_ms: int,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    before: str | None,
    after: str | None,
    prev_hash: str,
) -> str:
    payload = orjson.dumps([seq, time_ms, actor, action, entity_type, entity_id, before, after, prev_hash])
    return hashlib.sha256(payload).hexdigest()


class AuditLog:
    """Appends audit rows for one unit of work. The chain head row is locked on first use, so
    concurrent writers append one after another and the chain never forks."""

    def __init__(self, conn: Connection, actor: str) -> None:
        self._conn = conn
        self.actor = actor
        self._head: tuple[int, str] | None = None

    def record(
        self,
        action: str,
        entity_type: str,
        entity_id: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        project: str | None = None,
    ) -> None:
        """Append a row; its project (what a project-scoped admin may read) is `project`, else the project of
        the entity, found in this transaction. The project is not part of the hashed payload."""
        seq, prev = self._lock_head()
        seq += 1
        at = now_ms()
        before_text, after_text = _canonical(before), _canonical(after)
        digest = row_hash(seq, at, self.actor, action, entity_type, entity_id, before_text, after_text, prev)
        self._conn.execute(
            insert(audit_log).values(
                seq=seq,
                time=at,
                actor=self.actor,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                before=before_text,
                after=after_text,
                prev_hash=prev,
                hash=digest,
                project=project if project is not None else project_of(self._conn, entity_type, entity_id),
            )
        )
        self._conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=digest))
        self._head = (seq, digest)

    def record_many(
        self, entries: Sequence[tuple[str, str, str, dict[str, Any] | None, dict[str, Any] | None, str | None]]
    ) -> None:
        """Append one row per (action, entity_type, entity_id, before, after, project), chained as `record`
        would, with one INSERT for all and one move of the head (a pipeline writes hundreds at once)."""
        if not entries:
            return
        seq, prev = self._lock_head()
        at = now_ms()
        rows = []
        for action, entity_type, entity_id, before, after, project in entries:
            seq += 1
            before_text, after_text = _canonical(before), _canonical(after)
            digest = row_hash(seq, at, self.actor, action, entity_type, entity_id, before_text, after_text, prev)
            rows.append(
                {
                    "seq": seq,
                    "time": at,
                    "actor": self.actor,
                    "action": action,
                    "entity_type": entity_type,
                    "entity_id": entity_id,
                    "before": before_text,
                    "after": after_text,
                    "prev_hash": prev,
                    "hash": digest,
                    "project": project if project is not None else project_of(self._conn, entity_type, entity_id),
                }
            )
            prev = digest
        self._conn.execute(insert(audit_log), rows)
        self._conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=prev))
        self._head = (seq, prev)

    def _lock_head(self) -> tuple[int, str]:
        if self._head is None:
            row = self._conn.execute(
                select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
            ).one_or_none()
            if row is None:
                self._conn.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS))
                self._head = (0, GENESIS)
            else:
                self._head = (int(row.seq), str(row.hash))
        return self._head


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit events to read: exact actor, entity type and id; an action exactly, or every action under
    a prefix that ends in a dot (`deployment.`); events before `before_seq`."""

    actor: str | None = None
    action: str | None = None
    entity_type: str | None = None
    entity_id: str | None = None
    before_seq: int | None = None
    newest_first: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.actor is not None:
            found.append(audit_log.c.actor == self.actor)
        if self.action is not None:
            if self.action.endswith("."):
                prefix = self.action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                found.append(audit_log.c.action.like(prefix + "%", escape="\\"))
            else:
                found.append(audit_log.c.action == self.action)
        if self.entity_type is not None:
            found.append(audit_log.c.entity_type == self.entity_type)
        if self.entity_id is not None:
            found.append(audit_log.c.entity_id == self.entity_id)
        if self.before_seq is not None:
            found.append(audit_log.c.seq < self.before_seq)
        return found


def read_events(
    conn: Connection,
    after_seq: int = 0,
    limit: int | None = None,
    project: str | None = None,
    where: AuditFilter | None = None,
) -> Iterator[AuditEvent]:
    """Events after `after_seq`, oldest first; with `project`, only that project's; with `where`, only the
    events it matches (and newest first if it says so)."""
    query = select(audit_log).where(audit_log.c.seq > after_seq)
    if project is not None:
        query = query.where(audit_log.c.project == project)
    newest_first = False
    if where is not None:
        query = query.where(*where.conditions())
        newest_first = where.newest_first
    query = query.order_by(audit_log.c.seq.desc() if newest_first else audit_log.c.seq)
    if limit is not None:
        query = query.limit(limit)
    for row in conn.execute(query):
        yield AuditEvent(
            seq=row.seq,
            time=row.time,
            actor=row.actor,
            action=row.action,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            before=orjson.loads(row.before) if row.before is not None else None,
            after=orjson.loads(row.after) if row.after is not None else None,
            prev_hash=row.prev_hash,
            hash=row.hash,
        )


_CREATIONS: tuple[tuple[str, str, ColumnElement[str], FromClause], ...] = (
    ("project", "project.create", projects.c.name, projects),
    ("experiment", "experiment.create", cast(experiments.c.id, String), experiments),
    ("run", "run.create", runs.c.id, runs),
    ("dataset", "dataset.create", datasets.c.digest, datasets),
    ("token", "token.create", tokens.c.id, tokens),
    ("model", "model.create", registered_models.c.name, registered_models),
    (
        "model_version",
        "model_version.create",
        registered_models.c.name + "/" + cast(model_versions.c.version, String),
        model_versions.join(registered_models, registered_models.c.id == model_versions.c.model_id),
    ),
    ("deployment", "deployment.create", deployments.c.name, deployments),
    ("monitor", "monitor.create", monitors.c.name, monitors),
)
"""Each kind of entity whose creation writes an audit row: an entity without that row proves the log is
shorter than what happened."""
_SHOWN = 5


def _require_tables(conn: Connection) -> None:
    tables = {audit_log, audit_head, projects, experiments, runs, datasets, tokens, registered_models}
    tables |= {model_versions, deployments, monitors}
    present = set(inspect(conn).get_table_names())
    missing = sorted(table.name for table in tables if table.name not in present)
    if missing:
        where = conn.engine.url.render_as_string(hide_password=True)
        raise StoreUnavailable(
            f"the metadata store {where} has no table {', '.join(missing)}: this database was never migrated, "
            "or the URL names another database; check LOOPML_DATABASE_URL (or LOOPML_HOME), then run "
            "`loopml db upgrade`"
        )


def missing_creations(conn: Connection) -> list[str]:
    """Entities that exist but whose creation has no audit row, one sentence per kind of entity."""
    problems: list[str] = []
    for entity_type, action, entity_id, source in _CREATIONS:
        recorded = exists().where(
            audit_log.c.action == action,
            audit_log.c.entity_type == entity_type,
            audit_log.c.entity_id == entity_id,
        )
        query = select(entity_id).select_from(source).where(~recorded).order_by(entity_id)
        shown: list[str] = []
        count = 0
        for (found,) in conn.execute(query):
            count += 1
            if len(shown) < _SHOWN:
                shown.append(str(found))
        if count:
            more = f" and {count - _SHOWN} more" if count > _SHOWN else ""
            problems.append(
                f"{count} {entity_type} row(s) exist whose creation has no audit row ({action}): "
                f"{', '.join(shown)}{more}; their audit rows were deleted, or they were written to the "
                "database directly"
            )
    return problems


def verify_chain(conn: Connection) -> list[str]:
    """Every problem found in the chain, as sentences naming the row; empty when the chain is intact.

    Intact means more than "the rows link up": an empty log, or a log missing the creation of an entity
    that exists (its rows deleted from the start or the end, head row included), is a problem too.
    Raises `StoreUnavailable` when the store lacks a table (never migrated, or the wrong database).
    """
    _require_tables(conn)
    problems: list[str] = []
    expected_seq, prev = 1, GENESIS
    for row in conn.execute(select(audit_log).order_by(audit_log.c.seq)).yield_per(5000):
        if row.seq != expected_seq:
            if row.seq > expected_seq:
                missing = f"{expected_seq}" if row.seq == expected_seq + 1 else f"{expected_seq}..{row.seq - 1}"
                problems.append(f"row {missing} was deleted (sequence jumps from {expected_seq - 1} to {row.seq})")
            else:
                problems.append(f"row {row.seq} is out of sequence (expected {expected_seq})")
        if row.prev_hash != prev:
            problems.append(
                f"row {row.seq} does not link to the row before it (a row was inserted or deleted before it)"
            )
        recomputed = row_hash(
            row.seq,
            row.time,
            row.actor,
            row.action,
            row.entity_type,
            row.entity_id,
            row.before,
            row.after,
            row.prev_hash,
        )
        if recomputed != row.hash:
            problems.append(f"row {row.seq} ({row.action} {row.entity_type} {row.entity_id}) was edited")
        expected_seq, prev = row.seq + 1, row.hash
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one_or_none()
    last_seq = expected_seq - 1
    if head is not None and (head.seq != last_seq or head.hash != prev):
        if head.seq > last_seq:
            problems.append(f"rows {last_seq + 1}..{head.seq} were deleted from the end of the log")
        else:
            problems.append(f"the chain head records row {head.seq}, but the log ends at row {last_seq}")
    elif head is None and last_seq > 0:
        problems.append("the chain head row is missing")
    if last_seq == 0 and head is None:
        problems.append(
            "the audit log is empty: a store in use has at least one row (its first token, project or run), so "
            "every row and the chain head were deleted, or this is a new store or the wrong database"
        )
    problems.extend(missing_creations(conn))
    return problems
