"""Two deletes of one thing at once, on SQLite and PostgreSQL: one wins. A hard delete (model, version) is done
once and the other caller is told it does not exist; a soft delete (run, experiment) is recorded once."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loopml.artifacts import open_artifact_store
from loopml.domain import Principal, Role
from loopml.errors import ModelNotFound, ModelVersionNotFound
from loopml.registry import RegistryService
from loopml.store import MetadataStore, read_events, verify_chain
from loopml.tracking import TrackingService

ADMIN = Principal("admin", Role.ADMIN, None)
MANIFEST = b'{"flavor": "sklearn"}'


@dataclass
class Services:
    store: MetadataStore
    tracking: TrackingService
    registry: RegistryService
    run_id: str
    experiment_id: int


@pytest.fixture
def services(db_url: str, tmp_path: Path) -> Iterator[Services]:
    store = MetadataStore.open(db_url)
    tracking = TrackingService(store, open_artifact_store((tmp_path / "blobs").as_uri()))
    experiment = tracking.get_or_create_experiment(ADMIN, "e")
    run = tracking.create_run(ADMIN, experiment.id)
    tracking.log_artifact(ADMIN, run.id, "model/loopml-model.json", [MANIFEST])
    registry = RegistryService(store)
    registry.create_model(ADMIN, "bike")
    for _ in range(2):
        registry.create_version(ADMIN, "bike", run.id, "model", hashlib.sha256(MANIFEST).hexdigest(), "sklearn")
    yield Services(store, tracking, registry, run.id, experiment.id)
    store.close()


def _twice(call: Callable[[Principal], Any]) -> list[BaseException | None]:
    """`call` from two threads released together; each one's exception, or None."""
    outcomes: list[BaseException | None] = []
    start = threading.Barrier(2)

    def worker(index: int) -> None:
        start.wait()
        try:
            call(Principal(f"deleter-{index}", Role.EDITOR, None))
            outcomes.append(None)
        except BaseException as exc:  # collected and asserted by the test
            outcomes.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == 2, "a delete did not finish"
    return outcomes


def _actions(services: Services, action: str) -> int:
    with services.store.read() as unit:
        return sum(1 for event in read_events(unit.connection) if event.action == action)


def test_two_deletes_of_a_version_one_wins(services: Services) -> None:
    outcomes = _twice(lambda who: services.registry.delete_version(who, "bike", 2))
    assert outcomes.count(None) == 1
    assert any(isinstance(o, ModelVersionNotFound) for o in outcomes)
    assert _actions(services, "model_version.delete") == 1


def test_two_deletes_of_a_model_one_wins(services: Services) -> None:
    outcomes = _twice(lambda who: services.registry.delete_model(who, "bike"))
    assert outcomes.count(None) == 1
    assert any(isinstance(o, ModelNotFound) for o in outcomes)
    assert _actions(services, "model.delete") == 1
    with services.store.read() as unit:
        assert verify_chain(unit.connection) == []


def test_two_soft_deletes_of_a_run_record_one_deletion(services: Services) -> None:
    assert _twice(lambda who: services.tracking.delete_run(who, services.run_id)) == [None, None]
    assert _actions(services, "run.delete") == 1
    assert services.tracking.get_run(ADMIN, services.run_id).deleted_at is not None


def test_two_soft_deletes_of_an_experiment_record_one_deletion(services: Services) -> None:
    assert _twice(lambda who: services.tracking.delete_experiment(who, services.experiment_id)) == [None, None]
    assert _actions(services, "experiment.delete") == 1
    assert services.tracking.get_run(ADMIN, services.run_id).deleted_at is not None
