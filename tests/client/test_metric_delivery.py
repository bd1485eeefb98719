"""Metric delivery through outages: every point stored exactly once, no false failure, no raw exception.

The server-side faults (resets, stalls, responses cut off, a killed server) are in
tests/e2e/test_metric_delivery.py; here the embedded backend meets a real database outage.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

import loopml
from loopml.artifacts import open_artifact_store
from loopml.client import fluent
from loopml.client.local_backend import LocalBackend
from loopml.domain import MetricColumns, RunStatus
from loopml.errors import DeliveryFailed
from loopml.store import MetadataStore


@pytest.mark.operations("log_metrics")
def test_a_batch_resent_under_its_key_is_stored_once(client: loopml.Client) -> None:
    run = client.runs.create("keys")
    batch = MetricColumns(["loss", "acc"], [0.5, 0.9], [0, 0], [10, 10])
    assert client.backend.log_metrics(run.id, batch, "batch-1") == 2
    assert client.backend.log_metrics(run.id, batch, "batch-1") == 2  # the first answer was lost
    assert [m.value for m in client.runs.history(run.id, "loss")] == [0.5]
    assert client.runs.get(run.id).metrics == {"loss": 0.5, "acc": 0.9}


@pytest.fixture
def embedded_pg(pg_url: str, tmp_path: Path) -> Iterator[tuple[loopml.Client, str]]:
    """An embedded client on its own PostgreSQL database, and that database's URL."""
    store = MetadataStore.open(pg_url)
    made = loopml.Client(
        backend=LocalBackend(store, open_artifact_store((tmp_path / "artifacts").as_uri())),
        metric_batch_size=100,
        metric_flush_seconds=0.05,
    )
    yield made, pg_url
    _allow_connections(pg_url, True)
    made.close()


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres", autocommit=True)


def _allow_connections(url: str, allow: bool) -> None:
    name = url.rsplit("/", 1)[1]
    with _admin(url) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:  # and drop the connections the client's pool holds
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


@contextmanager
def _database_down(url: str) -> Iterator[None]:
    _allow_connections(url, False)
    try:
        yield
    finally:
        _allow_connections(url, True)


def _wait_for_a_failed_attempt(client: loopml.Client) -> None:
    client.metrics.kick()
    deadline = time.monotonic() + 60
    while client.metrics.retrying == 0:
        assert time.monotonic() < deadline, "the sender never tried to deliver during the outage"
        time.sleep(0.02)


def _log(client: loopml.Client, run_id: str, steps: range) -> None:
    for step in steps:
        client.runs.log_metrics(run_id, {"loss": 1.0 / (step + 1), "acc": step / 1000}, step=step)


def _counts(client: loopml.Client, run_id: str) -> Counter[tuple[str, int]]:
    return Counter((key, m.step) for key in ("loss", "acc") for m in client.runs.history(run_id, key))


@pytest.mark.postgres
def test_points_logged_through_a_database_outage_are_stored_once_and_the_run_finishes(
    embedded_pg: tuple[loopml.Client, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, url = embedded_pg
    monkeypatch.setattr(fluent, "_default", client)
    with loopml.start_run(experiment="outage", capture_environment=False) as run:
        _log(client, run.id, range(0, 300))
        client.runs.flush()
        with _database_down(url):
            _log(client, run.id, range(300, 700))
            _wait_for_a_failed_attempt(client)  # the store refused the sender: it must keep the points
        _log(client, run.id, range(700, 1000))
    assert client.runs.get(run.id).status is RunStatus.FINISHED
    counts = _counts(client, run.id)
    assert set(counts) == {(key, step) for key in ("loss", "acc") for step in range(1000)}
    assert set(counts.values()) == {1}
    assert client.metrics.retrying == 0


@pytest.mark.postgres
def test_points_that_cannot_be_delivered_in_time_are_reported_by_run_and_count(
    embedded_pg: tuple[loopml.Client, str],
) -> None:
    client, url = embedded_pg
    client.metrics.retry_seconds = 0.5
    run_id = client.runs.create("gone").id
    with _database_down(url):
        _log(client, run_id, range(0, 60))
        with pytest.raises(DeliveryFailed) as failure:
            client.runs.flush()
    message = str(failure.value)
    assert message.startswith("120 metric points were not stored: ")
    assert f"points of run {run_id}: not delivered within 0.5 s (LOOPML_METRIC_RETRY_SECONDS)" in message
    assert "OperationalError" in message  # the store's reason, not a bare "failed"
    # The sender survived the outage: what is logged after it is delivered, and nothing is reported twice.
    _log(client, run_id, range(60, 70))
    client.runs.flush()
    assert sorted(_counts(client, run_id)) == [(key, step) for key in ("acc", "loss") for step in range(60, 70)]


def test_points_refused_for_another_run_do_not_fail_this_one(client: loopml.Client) -> None:
    run = client.runs.create("two-runs")
    client.runs.log_metric(run.id, "loss", 0.5)
    client.runs.log_metric("f" * 32, "loss", 1.0)  # a run that does not exist
    with pytest.raises(DeliveryFailed, match=r"1 points of run f{32}") as failure:
        client.runs.end(run.id)
    assert failure.value.run_ids == {"f" * 32}
    assert client.runs.get(run.id).status is RunStatus.FINISHED
    assert [m.value for m in client.runs.history(run.id, "loss")] == [0.5]
