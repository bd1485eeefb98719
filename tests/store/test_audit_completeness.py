"""`verify_chain` against what the store holds: an empty log, or one missing the creation of an entity
that exists, is reported even when the rows that are left link up perfectly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select, text, update

from loopml.domain import DatasetInput, Deployment, DeploymentVersion, Role
from loopml.domain.monitoring import Monitor
from loopml.errors import StoreUnavailable
from loopml.store import MetadataStore, read_events, verify_chain
from loopml.store.audit import GENESIS, row_hash
from loopml.store.schema import audit_head, audit_log, tokens

RUN = "0" * 31 + "1"
CREATIONS = {
    "project.create": "default",
    "experiment.create": "1",
    "run.create": RUN,
    "dataset.create": "d" * 64,
    "model.create": "bike",
    "model_version.create": "bike/1",
    "deployment.create": "bike-demand",
    "monitor.create": "bike-drift",
}


@pytest.fixture
def store(db_url: str) -> Iterator[MetadataStore]:
    """One entity of every audited kind, each created through its repository (so audited)."""
    opened = MetadataStore.open(db_url)
    with opened.write("ann") as unit:
        project = unit.projects.get_or_create("default")
        experiment = unit.experiments.get_or_create(project, "bike")
        unit.runs.create(RUN, experiment.id, "train", 1000, None)
        unit.datasets.link(RUN, DatasetInput("hour", "d" * 64, (("cnt", "int64"),), 10, "hour.csv", "training"))
        unit.tokens.create("ci", Role.EDITOR, None)
        unit.models.create(project, "bike", "", "ann", {})
        unit.model_versions.create(unit.models.lock("bike"), RUN, "model", "e" * 64, "sklearn", None, "", {}, "ann")
        unit.deployments.save(
            project,
            Deployment("bike-demand", "default", "direct", 0, (DeploymentVersion("bike", 1, 100, "stable"),), "stable"),
        )
        unit.monitors.create(
            Monitor("bike-drift", "bike-demand", None, None, 3600, None, 0, 1, {}, None, (), {}, 1000, "ann")
        )
    yield opened
    opened.close()


def problems(store: MetadataStore) -> list[str]:
    with store.read() as unit:
        return verify_chain(unit.connection)


def forget(store: MetadataStore, action: str) -> None:
    """Delete the rows of `action` and rewrite the rest into a consistent chain: what someone with write
    access to the database, and the time to recompute every hash, would do."""
    with store.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.action == action))
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).all()
        conn.execute(delete(audit_log))
        prev = GENESIS
        for seq, row in enumerate(rows, start=1):
            values = row._asdict() | {"seq": seq, "prev_hash": prev}
            fields = ("seq", "time", "actor", "action", "entity_type", "entity_id", "before", "after", "prev_hash")
            values["hash"] = prev = row_hash(*(values[f] for f in fields))
            conn.execute(audit_log.insert().values(**values))
        conn.execute(update(audit_head).values(seq=len(rows), hash=prev))


def test_a_store_built_through_its_repositories_verifies(store: MetadataStore) -> None:
    with store.read() as unit:
        created = {e.action: e.entity_id for e in read_events(unit.connection) if e.action.endswith(".create")}
    assert {k: v for k, v in created.items() if k != "token.create"} == CREATIONS
    assert problems(store) == []


@pytest.mark.parametrize("action", [*CREATIONS, "token.create"])
def test_a_rewritten_chain_missing_a_creation_is_reported(store: MetadataStore, action: str) -> None:
    forget(store, action)

    found = problems(store)

    assert len(found) == 1, found
    assert action in found[0]
    assert "creation has no audit row" in found[0]
    assert action == "token.create" or CREATIONS[action] in found[0]


def test_an_emptied_log_is_reported(store: MetadataStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(delete(audit_log))
        conn.execute(delete(audit_head))

    found = problems(store)

    assert any("the audit log is empty" in p for p in found)
    assert sum("creation has no audit row" in p for p in found) == len(CREATIONS) + 1


def test_a_new_store_is_reported_empty(db_url: str) -> None:
    opened = MetadataStore.open(db_url)
    try:
        found = problems(opened)
    finally:
        opened.close()
    assert len(found) == 1
    assert "the audit log is empty" in found[0]


def test_rows_written_behind_the_stores_back_are_named(store: MetadataStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            tokens.insert(),
            [
                {"id": f"forged{i}", "name": "backdoor", "secret_hash": "f" * 64, "role": "admin", "created_at": 0}
                for i in range(7)
            ],
        )

    found = problems(store)

    assert len(found) == 1
    assert found[0].startswith("7 token row(s) exist whose creation has no audit row (token.create): forged0")
    assert found[0].count("forged") == 5
    assert "and 2 more" in found[0]


@pytest.mark.parametrize("table", ["audit_log", "monitors"])
def test_a_missing_table_is_a_clear_error(store: MetadataStore, table: str) -> None:
    with store.engine.begin() as conn:
        cascade = "" if store.engine.dialect.name == "sqlite" else " CASCADE"
        conn.execute(text(f"DROP TABLE {table}{cascade}"))

    with pytest.raises(StoreUnavailable, match=f"has no table {table}") as raised:
        problems(store)

    assert "loopml db upgrade" in raised.value.message
