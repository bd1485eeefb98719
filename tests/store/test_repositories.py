"""The metadata store's repositories, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from loopml.domain import DatasetInput, Metric, MetricColumns, Role, RunStatus
from loopml.domain.monitoring import Feedback
from loopml.errors import ArtifactNotFound, ParamConflict, RunNotFound, TokenNotFound
from loopml.store import MetadataStore
from loopml.store.migrations import LATEST, current_revision, head_revision

RUN = "0" * 31 + "1"


@pytest.fixture
def store(db_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore.open(db_url)
    yield opened
    opened.close()


@pytest.fixture
def run_id(store: MetadataStore) -> str:
    with store.write("ann") as unit:
        experiment = unit.experiments.get_or_create(unit.projects.get_or_create("default"), "bike")
        unit.runs.create(RUN, experiment.id, "first", 1000, None)
    return RUN


def test_migrations_bring_an_empty_database_to_the_head_revision(store: MetadataStore) -> None:
    assert head_revision() == LATEST
    assert current_revision(store.engine) == LATEST


def test_opening_twice_is_harmless(db_url: str, store: MetadataStore) -> None:
    MetadataStore.open(db_url).close()
    assert current_revision(store.engine) == LATEST


def test_run_round_trip_with_params_tags_and_status(store: MetadataStore, run_id: str) -> None:
    with store.write("ann") as unit:
        unit.runs.log_params(run_id, {"max_depth": "6", "lr": "0.1"})
        unit.runs.set_tags(run_id, {"team": "demand"})
        unit.runs.set_status(run_id, RunStatus.FINISHED, 2000)
    with store.read() as unit:
        run = unit.runs.get(run_id)
        assert unit.runs.project_of(run_id) == "default"
    assert run.params == {"max_depth": "6", "lr": "0.1"}
    assert run.tags == {"team": "demand"}
    assert (run.status, run.start_time, run.end_time) == (RunStatus.FINISHED, 1000, 2000)


def test_params_are_write_once(store: MetadataStore, run_id: str) -> None:
    with store.write("ann") as unit:
        unit.runs.log_params(run_id, {"max_depth": "6"})
    with store.write("ann") as unit:
        unit.runs.log_params(run_id, {"max_depth": "6"})  # the same value again: no-op
    with pytest.raises(ParamConflict, match=r"max_depth.*'6'.*'7'"), store.write("ann") as unit:
        unit.runs.log_params(run_id, {"max_depth": "7", "other": "x"})
    with store.read() as unit:
        assert unit.runs.get(run_id).params == {"max_depth": "6"}  # the failed call stored nothing


def test_tags_can_change(store: MetadataStore, run_id: str) -> None:
    with store.write("ann") as unit:
        unit.runs.set_tags(run_id, {"stage": "dev"})
    with store.write("ann") as unit:
        unit.runs.set_tags(run_id, {"stage": "prod"})
    with store.read() as unit:
        assert unit.runs.get(run_id).tags == {"stage": "prod"}


def test_metric_history_and_latest_value_including_nan_and_inf(store: MetadataStore, run_id: str) -> None:
    points = [Metric("loss", 1.0 / (i + 1), i, 100 + i) for i in range(1000)]
    points += [
        Metric("loss", math.inf, 1000, 5000),
        Metric("acc", math.nan, 3, 10),
        Metric("acc", -math.inf, 1, 9),
    ]
    with store.write("ann") as unit:
        assert unit.metrics.log(run_id, MetricColumns.from_points(points)) == 1003
    with store.write("ann") as unit:  # an older step logged later does not move the latest value back
        unit.metrics.log(run_id, MetricColumns.from_points([Metric("loss", 42.0, 5, 99999)]))
    with store.read() as unit:
        history = unit.metrics.history(run_id, "loss")
        acc = unit.metrics.history(run_id, "acc")
        run = unit.runs.get(run_id)
        assert unit.metrics.count(run_id) == 1004
    assert [m.step for m in history] == sorted(m.step for m in history)
    assert len(history) == 1002 and history[-1].value == math.inf
    assert [m.value for m in history if m.step == 5] == [1 / 6, 42.0]  # same step: logging order kept
    assert acc[0].value == -math.inf and math.isnan(acc[1].value)
    assert run.metrics["loss"] == math.inf
    assert math.isnan(run.metrics["acc"])


def test_the_same_dataset_logged_twice_is_one_version(store: MetadataStore, run_id: str) -> None:
    data = DatasetInput("hour-2011", "ab" * 32, (("temp", "float64"), ("cnt", "int64")), 8645, "hour.csv", "training")
    with store.write("ann") as unit:
        first = unit.datasets.link(run_id, data)
    with store.write("ann") as unit:
        again = unit.datasets.link(run_id, data)
    with store.read() as unit:
        linked = unit.datasets.for_run(run_id)
        count = unit.connection.execute(text("SELECT COUNT(*) FROM datasets")).scalar_one()
    assert first.digest == again.digest and count == 1
    assert [(d.digest, d.role, d.schema) for d in linked] == [("ab" * 32, "training", data.schema)]


def test_artifact_records_point_at_blobs(store: MetadataStore, run_id: str) -> None:
    with store.write("ann") as unit:
        unit.artifacts.put(run_id, "plots/a.png", "cd" * 32, 10)
        unit.artifacts.put(run_id, "model/m.skops", "ef" * 32, 20)
        unit.artifacts.put(run_id, "plots/a.png", "12" * 32, 11)  # overwrite moves the pointer
    with store.read() as unit:
        assert unit.artifacts.get(run_id, "plots/a.png").digest == "12" * 32
        assert [a.path for a in unit.artifacts.list(run_id, "plots")] == ["plots/a.png"]
        assert len(unit.artifacts.list(run_id)) == 2
        with pytest.raises(ArtifactNotFound):
            unit.artifacts.get(run_id, "nope")


def test_unknown_run_is_not_found(store: MetadataStore) -> None:
    with store.read() as unit:
        with pytest.raises(RunNotFound):
            unit.runs.get("f" * 32)
        with pytest.raises(RunNotFound):
            unit.runs.project_of("f" * 32)


def test_tokens_are_stored_hashed_and_can_be_revoked(store: MetadataStore) -> None:
    with store.write("admin") as unit:
        token, secret = unit.tokens.create("ci", Role.EDITOR, "bike")
    with store.read() as unit:
        stored = unit.connection.execute(text("SELECT secret_hash FROM tokens")).scalar_one()
        assert secret not in stored and len(stored) == 64
        assert unit.tokens.authenticate(secret) == token
        assert unit.tokens.authenticate(secret + "x") is None
    with store.write("admin") as unit:
        unit.tokens.revoke(token.id)
        with pytest.raises(TokenNotFound):
            unit.tokens.revoke("nope")
    with store.read() as unit:
        assert unit.tokens.authenticate(secret) is None
        assert unit.tokens.count_active() == 0


def test_a_failed_unit_of_work_writes_nothing_not_even_audit(store: MetadataStore, run_id: str) -> None:
    with store.read() as unit:
        before = unit.connection.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one()
    with pytest.raises(ParamConflict), store.write("ann") as unit:
        unit.runs.set_tags(run_id, {"a": "b"})
        unit.runs.log_params(run_id, {"x": "1"})
        unit.runs.log_params(run_id, {"x": "2"})
    with store.read() as unit:
        after = unit.connection.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one()
        assert unit.runs.get(run_id).tags == {}
    assert after == before


def test_labels_stored_before_projects_scoped_them_stay_global_after_the_migration(db_url: str) -> None:
    from alembic import command

    from loopml.store.migrations import _config

    old = MetadataStore.open(db_url, upgrade=False)
    try:
        command.upgrade(_config(old.engine), "0004")
        with old.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO feedback (request_id, business_key, label, label_time, received_at) "
                    "VALUES ('r1', NULL, '1', 5, 5)"
                )
            )
    finally:
        old.close()
    upgraded = MetadataStore.open(db_url)
    try:
        with upgraded.write("ann") as unit:
            assert unit.monitoring.labels(["r1"], project="churn") == {"r1": (1, 5)}
            unit.monitoring.record_feedback([Feedback(0, request_id="r1")], 9, project="churn")
            unit.monitoring.record_feedback([Feedback(2, request_id="r1")], 9, project="fraud")
        with upgraded.read() as unit:
            assert unit.monitoring.labels(["r1"], project="churn") == {"r1": (0, 9)}  # its own label wins
            assert unit.monitoring.labels(["r1"], project="fraud") == {"r1": (2, 9)}
            assert unit.monitoring.labels(["r1"], project="other") == {"r1": (1, 5)}
    finally:
        upgraded.close()


def test_metric_history_orders_by_step_then_timestamp_then_logging_order(store: MetadataStore, run_id: str) -> None:
    """Points logged out of order over several batches, with exact (step, timestamp) ties inside a batch and
    across batches, come back as a stable sort of everything logged."""
    rng = random.Random(7)
    logged: list[Metric] = []
    for _ in range(4):
        batch = [Metric("loss", float(len(logged) + i), rng.randrange(6), rng.randrange(3)) for i in range(40)]
        logged += batch
        with store.write("ann") as unit:
            unit.metrics.log(run_id, MetricColumns.from_points(batch))
    with store.read() as unit:
        history = unit.metrics.history(run_id, "loss")
    assert history == sorted(logged, key=lambda m: (m.step, m.timestamp))
    assert len({(m.step, m.timestamp) for m in logged}) < len(logged)  # the ties are there
