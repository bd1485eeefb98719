"""Idempotent metric batches in the store: a batch key is applied once per run, also by concurrent twins."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from loopml.domain import MetricColumns
from loopml.store import MetadataStore
from loopml.store.schema import metadata


@pytest.fixture
def store(db_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore.open(db_url)
    yield opened
    opened.close()


def _run(store: MetadataStore) -> str:
    run_id = "a" * 32
    with store.write("ann") as unit:
        experiment = unit.experiments.get_or_create(unit.projects.get_or_create("default"), "exp")
        unit.runs.create(run_id, experiment.id, "r", 0, None)
    return run_id


def _batch(first_step: int, size: int = 3) -> MetricColumns:
    steps = list(range(first_step, first_step + size))
    return MetricColumns(["loss"] * size, [float(s) for s in steps], steps, [1_000 + s for s in steps])


def test_the_migration_creates_the_batch_key_table_the_code_uses(store: MetadataStore) -> None:
    def include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table == "metric_batches"

    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include})
        assert compare_metadata(context, metadata) == []


def test_a_key_is_applied_once_per_run(store: MetadataStore) -> None:
    run_id = _run(store)
    with store.write("ann") as unit:
        assert unit.metrics.log(run_id, _batch(0), "k1") == 3
    with store.write("ann") as unit:
        assert unit.metrics.log(run_id, _batch(0), "k1") == 3  # the same answer, nothing stored
        assert unit.metrics.log(run_id, _batch(3), "k2") == 3
        assert unit.metrics.log(run_id, _batch(6), None) == 3  # without a key: always stored
    with store.read() as unit:
        assert [m.step for m in unit.metrics.history(run_id, "loss")] == list(range(9))
        assert unit.metrics.count(run_id) == 9


def test_a_batch_rolled_back_leaves_its_key_free(store: MetadataStore) -> None:
    run_id = _run(store)
    with pytest.raises(RuntimeError), store.write("ann") as unit:
        unit.metrics.log(run_id, _batch(0), "k1")
        raise RuntimeError("the transaction fails after the points were written")
    with store.write("ann") as unit:
        assert unit.metrics.log(run_id, _batch(0), "k1") == 3
    with store.read() as unit:
        assert unit.metrics.count(run_id) == 3


@pytest.mark.postgres
def test_a_concurrent_twin_waits_for_the_first_and_stores_nothing(pg_url: str) -> None:
    """The retry of a batch whose first attempt is still committing: the twin blocks on the key, then sees it."""
    store = MetadataStore.open(pg_url)
    try:
        run_id = _run(store)
        results: list[int] = []
        with store.write("first") as unit:
            unit.metrics.log(run_id, _batch(0), "twin")
            twin = threading.Thread(target=lambda: results.append(_log_in_own_transaction(store, run_id)))
            twin.start()
            _wait_until_blocked_on_a_lock(pg_url)
        twin.join(60)
        assert results == [3]
        with store.read() as unit:
            assert unit.metrics.count(run_id) == 3
    finally:
        store.close()


def _log_in_own_transaction(store: MetadataStore, run_id: str) -> int:
    with store.write("twin") as unit:
        return unit.metrics.log(run_id, _batch(0), "twin")


def _wait_until_blocked_on_a_lock(url: str) -> None:
    """Until a session of this database waits on a lock (the twin's insert of the key), at most 60 s."""
    database = url.rsplit("/", 1)[1]
    admin = url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres"
    deadline = time.monotonic() + 60
    with psycopg.connect(admin, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", (database,)
            ).fetchone()
            if waiting and waiting[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the twin never waited on the first transaction's key")
