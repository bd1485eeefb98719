"""Which blob each logical artifact path of a run points at."""

from __future__ import annotations

from sqlalchemy import Connection, select

from loopml.domain import ArtifactRecord
from loopml.errors import ArtifactNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.schema import artifacts
from loopml.store.upsert import upsert


class ArtifactRecordRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def put(self, run_id: str, path: str, digest: str, size: int) -> ArtifactRecord:
        before = self._conn.execute(
            select(artifacts.c.digest).where(artifacts.c.run_id == run_id, artifacts.c.path == path)
        ).scalar_one_or_none()
        created = now_ms()
        upsert(
            self._conn,
            artifacts,
            [{"run_id": run_id, "path": path, "digest": digest, "size": size, "created_at": created}],
            keys=("run_id", "path"),
            update=("digest", "size", "created_at"),
        )
        self._audit.record(
            "run.log_artifact",
            "run",
            run_id,
            before=None if before is None else {"path": path, "digest": before},
            after={"path": path, "digest": digest, "size": size},
        )
        return ArtifactRecord(run_id=run_id, path=path, digest=digest, size=size, created_at=created)

    def get(self, run_id: str, path: str) -> ArtifactRecord:
        row = self._conn.execute(
            select(artifacts).where(artifacts.c.run_id == run_id, artifacts.c.path == path)
        ).one_or_none()
        if row is None:
            raise ArtifactNotFound(f"run {run_id} has no artifact {path!r}")
        return ArtifactRecord(row.run_id, row.path, row.digest, row.size, row.created_at)

    def list(self, run_id: str, prefix: str | None = None) -> list[ArtifactRecord]:
        query = select(artifacts).where(artifacts.c.run_id == run_id).order_by(artifacts.c.path)
        if prefix:
            query = query.where(artifacts.c.path.startswith(prefix.rstrip("/") + "/", autoescape=True))
        return [ArtifactRecord(r.run_id, r.path, r.digest, r.size, r.created_at) for r in self._conn.execute(query)]
