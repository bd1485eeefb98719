"""The deployment repository (revisions, history, decisions, audit) and controller leases, on both backends."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from loopml.domain import Deployment, DeploymentVersion, RolloutDecision
from loopml.errors import DeploymentNotFound
from loopml.store import MetadataStore, read_events, verify_chain
from loopml.store.schema import metadata

TABLES = {"deployments", "deployment_revisions", "rollout_decisions", "leases"}


@pytest.fixture
def store(db_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore.open(db_url)
    yield opened
    opened.close()


def _deployment(version: int, weight: int = 100) -> Deployment:
    return Deployment(
        name="bike-demand",
        project="ignored",
        strategy="direct",
        revision=0,
        versions=(DeploymentVersion("bike", version, weight, "stable"),),
        state="stable",
        thresholds={"min_requests": 50},
    )


def test_migration_0003_creates_the_deployment_tables_the_code_uses(store: MetadataStore) -> None:
    def include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table in TABLES

    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include})
        assert compare_metadata(context, metadata) == []


def test_every_save_is_a_new_revision_with_history_and_an_audit_event(store: MetadataStore) -> None:
    with store.write("ann") as unit:
        project = unit.projects.get_or_create("default")
        first = unit.deployments.save(project, _deployment(1), "first")
    with store.write("bob") as unit:
        assert unit.deployments.find("bike-demand", lock=True) == first
        second = unit.deployments.save(unit.projects.get("default"), _deployment(2), "second", at=first.created_at + 5)
    assert (first.revision, second.revision, second.project) == (1, 2, "default")
    assert (second.created_at, second.updated_at) == (first.created_at, first.created_at + 5)
    with store.read() as unit:
        assert unit.deployments.get("bike-demand") == second
        assert [d.name for d in unit.deployments.list("default")] == ["bike-demand"]
        assert unit.deployments.list("other") == []
        history = unit.deployments.history("bike-demand")
        assert [(h.revision, h.actor, h.reason, h.deployment.versions[0].version) for h in history] == [
            (2, "bob", "second", 2),
            (1, "ann", "first", 1),
        ]
        events = [e for e in read_events(unit.connection) if e.entity_type == "deployment"]
        assert [(e.action, e.actor) for e in events] == [("deployment.create", "ann"), ("deployment.update", "bob")]
        assert events[1].before is not None and events[1].before["versions"][0]["version"] == 1
        assert events[1].after is not None and events[1].after["versions"][0]["version"] == 2
        assert verify_chain(unit.connection) == []
        with pytest.raises(DeploymentNotFound):
            unit.deployments.get("nope")


def test_decisions_are_kept_with_their_numbers_and_audited(store: MetadataStore) -> None:
    with store.write("ann") as unit:
        unit.deployments.save(unit.projects.get_or_create("default"), _deployment(1))
    numbers = {"candidate_error_rate": 0.2, "failed_checks": ["error_rate"]}
    with store.write("controller") as unit:
        for i, outcome in enumerate(("inconclusive", "failed")):
            unit.deployments.record_decision(
                RolloutDecision("bike-demand", 1, 0, outcome, numbers, f"why {i}", 1000 + i, "hold")  # type: ignore[arg-type]
            )
        with pytest.raises(DeploymentNotFound):
            unit.deployments.record_decision(RolloutDecision("nope", 1, 0, "failed", {}, "", 1))
    with store.read() as unit:
        found = unit.deployments.decisions("bike-demand")
        assert [(d.outcome, d.reason, d.metrics) for d in found] == [
            ("inconclusive", "why 0", numbers),
            ("failed", "why 1", numbers),
        ]
        assert [d.outcome for d in unit.deployments.decisions("bike-demand", limit=1)] == ["failed"]
        [last] = [e for e in read_events(unit.connection) if e.action == "deployment.rollout_decision"][-1:]
        assert last.actor == "controller" and last.after is not None
        assert last.after["metrics"] == numbers and last.after["outcome"] == "failed"


def test_migration_0007_counts_the_steps_of_recorded_decisions_from_1(db_url: str) -> None:
    from alembic import command

    from loopml.store.migrations import _config, upgrade_to_head

    store = MetadataStore.open(db_url)
    try:
        with store.write("ann") as unit:
            unit.deployments.save(unit.projects.get_or_create("default"), _deployment(1))
        with store.write("controller") as unit:
            unit.deployments.record_decision(RolloutDecision("bike-demand", 1, 1, "failed", {}, "why", 1000))
        command.downgrade(_config(store.engine), "0006")
        with store.engine.connect() as conn:  # as written before 0007: the first step was 0
            assert conn.execute(text("SELECT step FROM rollout_decisions")).scalar_one() == 0
        assert upgrade_to_head(store.engine)
        with store.read() as unit:
            assert [d.step for d in unit.deployments.decisions("bike-demand")] == [1]
    finally:
        store.close()


def test_a_lease_has_one_holder_until_it_expires(store: MetadataStore) -> None:
    with store.write("a") as unit:
        assert unit.leases.acquire("rollout", "a", now_ms=1000, ttl_ms=100)
    with store.write("b") as unit:
        assert not unit.leases.acquire("rollout", "b", now_ms=1050, ttl_ms=100)
        assert unit.leases.holder("rollout", 1050) == "a"
    with store.write("a") as unit:
        assert unit.leases.acquire("rollout", "a", now_ms=1090, ttl_ms=100)  # renewed until 1190
    with store.write("b") as unit:
        assert not unit.leases.acquire("rollout", "b", now_ms=1150, ttl_ms=100)
        assert unit.leases.acquire("rollout", "b", now_ms=1190, ttl_ms=100)
    with store.write("b") as unit:
        unit.leases.release("rollout", "b")
        assert unit.leases.holder("rollout", 1200) is None
        assert unit.leases.acquire("rollout", "a", now_ms=1200, ttl_ms=100)


def test_replicas_racing_for_a_free_lease_get_exactly_one_holder(store: MetadataStore) -> None:
    won: list[str] = []
    barrier = threading.Barrier(6)

    def race(holder: str) -> None:
        barrier.wait()
        with store.write(holder) as unit:
            if unit.leases.acquire("rollout", holder, now_ms=5000, ttl_ms=1000):
                won.append(holder)

    threads = [threading.Thread(target=race, args=(f"r{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
