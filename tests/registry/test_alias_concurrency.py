"""Concurrent alias moves (10 threads moving `champion` among 5 versions), on SQLite and PostgreSQL: the
alias always names exactly one existing version, and the audit log holds every move, in order."""

from __future__ import annotations

import hashlib
import itertools
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from loopml.artifacts import open_artifact_store
from loopml.domain import Principal, Role
from loopml.registry import RegistryService
from loopml.store import MetadataStore, read_events, verify_chain
from loopml.store.schema import model_aliases, model_versions
from loopml.tracking import TrackingService

THREADS = 10
MOVES = 8
VERSIONS = 5
ADMIN = Principal("admin", Role.ADMIN, None)


@pytest.fixture
def registry(db_url: str, tmp_path: Path) -> Iterator[RegistryService]:
    store = MetadataStore.open(db_url)
    tracking = TrackingService(store, open_artifact_store((tmp_path / "blobs").as_uri()))
    manifest = b'{"flavor": "sklearn"}'
    run = tracking.create_run(ADMIN, tracking.get_or_create_experiment(ADMIN, "e").id)
    tracking.log_artifact(ADMIN, run.id, "model/loopml-model.json", [manifest])
    service = RegistryService(store)
    service.create_model(ADMIN, "bike")
    for _ in range(VERSIONS):
        service.create_version(ADMIN, "bike", run.id, "model", hashlib.sha256(manifest).hexdigest(), "sklearn")
    service.set_alias(ADMIN, "bike", "champion", 1, reason="start")
    yield service
    store.close()


def test_concurrent_alias_moves_keep_one_target_and_an_ordered_audit_trail(registry: RegistryService) -> None:
    errors: list[BaseException] = []
    seen: list[int] = []
    start = threading.Barrier(THREADS)

    def mover(index: int) -> None:
        principal = Principal(f"mover-{index}", Role.EDITOR, None)
        pick = random.Random(index)
        try:
            start.wait()
            for move in range(MOVES):
                target = pick.randint(1, VERSIONS)
                registry.set_alias(principal, "bike", "champion", target, reason=f"{index}:{move}")
                seen.append(registry.resolve(principal, "models:/bike@champion").version)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=mover, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert errors == []
    assert all(1 <= version <= VERSIONS for version in seen)

    with registry.store.read() as unit:
        rows = unit.connection.execute(select(model_aliases.c.version).where(model_aliases.c.alias == "champion")).all()
        existing = unit.connection.execute(select(func.count()).select_from(model_versions)).scalar_one()
        events = [e for e in read_events(unit.connection) if e.action == "model.set_alias"]
        assert verify_chain(unit.connection) == []
    assert len(rows) == 1 and 1 <= rows[0].version <= existing == VERSIONS

    assert len(events) == 1 + THREADS * MOVES  # the first move (before the threads) and every threaded one
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    for earlier, later in itertools.pairwise(events):
        assert later.before == {"alias": "champion", "version": earlier.after["version"]}  # type: ignore[index]
    assert events[-1].after["version"] == rows[0].version  # type: ignore[index]

    by_mover: dict[str, list[int]] = {}
    for event in events[1:]:
        assert event.after is not None
        index, move = str(event.after["reason"]).split(":")
        assert event.actor == f"mover-{index}"
        by_mover.setdefault(event.actor, []).append(int(move))
    assert by_mover == {f"mover-{i}": list(range(MOVES)) for i in range(THREADS)}
