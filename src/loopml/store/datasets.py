"""Dataset versions (by content digest) and the runs that used them."""

from __future__ import annotations

import orjson
from sqlalchemy import Connection, insert, select

from loopml.domain import Dataset, DatasetInput
from loopml.errors import DatasetNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.schema import datasets, run_datasets


def _dataset(row: object, role: str | None = None) -> Dataset:
    schema = tuple((str(c), str(t)) for c, t in orjson.loads(row.schema))  # type: ignore[attr-defined]
    return Dataset(
        digest=row.digest,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        schema=schema,
        rows=row.rows,  # type: ignore[attr-defined]
        source=row.source,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        role=role,
    )


class DatasetRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def get(self, digest: str) -> Dataset:
        row = self._conn.execute(select(datasets).where(datasets.c.digest == digest)).one_or_none()
        if row is None:
            raise DatasetNotFound(f"dataset {digest!r} does not exist")
        return _dataset(row)

    def link(self, run_id: str, data: DatasetInput) -> Dataset:
        """Record the dataset version (once per digest) and that `run_id` used it in `data.role`."""
        row = self._conn.execute(select(datasets).where(datasets.c.digest == data.digest)).one_or_none()
        if row is None:
            created = now_ms()
            self._conn.execute(
                insert(datasets).values(
                    digest=data.digest,
                    name=data.name,
                    schema=orjson.dumps([list(c) for c in data.schema]).decode(),
                    rows=data.rows,
                    source=data.source,
                    created_at=created,
                )
            )
            self._audit.record(
                "dataset.create",
                "dataset",
                data.digest,
                after={"name": data.name, "rows": data.rows, "source": data.source},
            )
            dataset = Dataset(data.digest, data.name, data.schema, data.rows, data.source, created, data.role)
        else:
            dataset = _dataset(row, data.role)
        linked = self._conn.execute(
            select(run_datasets.c.run_id).where(
                run_datasets.c.run_id == run_id,
                run_datasets.c.digest == data.digest,
                run_datasets.c.role == data.role,
            )
        ).one_or_none()
        if linked is None:
            self._conn.execute(insert(run_datasets).values(run_id=run_id, digest=data.digest, role=data.role))
            self._audit.record("run.log_dataset", "run", run_id, after={"dataset": data.digest, "role": data.role})
        return dataset

    def for_run(self, run_id: str) -> list[Dataset]:
        query = (
            select(datasets, run_datasets.c.role)
            .join(run_datasets, run_datasets.c.digest == datasets.c.digest)
            .where(run_datasets.c.run_id == run_id)
            .order_by(run_datasets.c.role, datasets.c.name)
        )
        return [_dataset(row, row.role) for row in self._conn.execute(query)]
