"""The audit hash chain: every mutation is recorded, and any edit, insertion or deletion is detected."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from loopml.domain import Role
from loopml.store import MetadataStore, read_events, verify_chain


@pytest.fixture
def store(db_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore.open(db_url)
    with opened.write("ann") as unit:
        experiment = unit.experiments.get_or_create(unit.projects.get_or_create("default"), "bike")
        for i in range(3):
            run_id = f"{i:032x}"
            unit.runs.create(run_id, experiment.id, f"run{i}", 1000, None)
            unit.runs.log_params(run_id, {"i": str(i)})
        unit.tokens.create("ci", Role.EDITOR, None)
    yield opened
    opened.close()


def _problems(store: MetadataStore) -> list[str]:
    with store.read() as unit:
        return verify_chain(unit.connection)


def _sql(store: MetadataStore, statement: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement))


def test_every_mutation_is_an_event_with_actor_and_entity(store: MetadataStore) -> None:
    with store.read() as unit:
        events = list(read_events(unit.connection))
    assert [e.action for e in events] == [
        "project.create",
        "experiment.create",
        *["run.create", "run.log_params"] * 3,
        "token.create",
    ]
    assert {e.actor for e in events} == {"ann"}
    assert events[2].entity_type == "run" and events[2].after == {
        "experiment_id": 1,
        "name": "run0",
        "parent_run_id": None,
    }
    assert [e.seq for e in events] == list(range(1, 10))
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(events))
    assert _problems(store) == []


def test_an_edited_row_is_named(store: MetadataStore) -> None:
    _sql(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
    problems = _problems(store)
    assert problems == ["row 4 (run.log_params run 00000000000000000000000000000000) was edited"]


def test_an_edited_payload_is_detected(store: MetadataStore) -> None:
    _sql(store, """UPDATE audit_log SET "after" = '{"i":"9"}' WHERE seq = 4""")
    assert any("row 4" in p and "edited" in p for p in _problems(store))


def test_a_deleted_row_is_named(store: MetadataStore) -> None:
    _sql(store, "DELETE FROM audit_log WHERE seq = 5")
    problems = _problems(store)
    assert any("row 5 was deleted" in p for p in problems)


def test_deleting_the_newest_rows_is_detected(store: MetadataStore) -> None:
    _sql(store, "DELETE FROM audit_log WHERE seq >= 8")
    problems = _problems(store)
    assert problems[0] == "rows 8..9 were deleted from the end of the log"
    assert problems[1:] == [p for p in problems if "token.create" in p]  # row 9 created the token that exists
    assert len(problems) == 2


def test_an_inserted_row_is_detected(store: MetadataStore) -> None:
    _sql(store, "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 5")
    _sql(store, "UPDATE audit_log SET seq = seq - 99 WHERE seq >= 105")
    _sql(
        store,
        "INSERT INTO audit_log (seq, time, actor, action, entity_type, entity_id, prev_hash, hash) "
        "SELECT 5, time, 'mallory', 'run.create', 'run', 'x', hash, 'ff' FROM audit_log WHERE seq = 4",
    )
    problems = _problems(store)
    assert any("row 5" in p for p in problems)
    assert any("row 6 does not link" in p for p in problems)


def test_concurrent_writers_never_fork_the_chain(store: MetadataStore) -> None:
    def write(i: int) -> None:
        with store.write(f"writer{i}") as unit:
            unit.runs.set_tags(f"{i % 3:032x}", {f"k{i}": "v"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(40)))
    assert _problems(store) == []
    with store.read() as unit:
        assert len(list(read_events(unit.connection))) == 9 + 40
