"""Several `loopml server` replicas on one PostgreSQL store: one rollout controller acts at a time, and when
its replica dies another takes over within the lease."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sqlalchemy import create_engine, text

import loopml

from .conftest import ADMIN, ServerProcess, free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
INTERVAL_S, LEASE_S = 0.2, 3.0  # a loaded CI machine may stall a replica for a second; not for 3


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    shared = {
        "LOOPML_ARTIFACT_ROOT": (tmp_path / "artifacts").as_uri(),
        "LOOPML_REQUEST_LOG_DIR": str(tmp_path / "request-log"),
        "LOOPML_ROLLOUT_INTERVAL_SECONDS": str(INTERVAL_S),
        "LOOPML_ROLLOUT_LEASE_SECONDS": str(LEASE_S),
    }
    started: list[ServerProcess] = []
    try:
        for i in range(3):  # one after the other: the first start creates the schema
            replica = ServerProcess(tmp_path / f"replica-{i}", pg_url, free_port(), extra_env=shared)
            started.append(replica)
            replica.start()
        yield started
    finally:
        for replica in started:
            replica.stop()


def _holder_pid(database_url: str) -> int | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT holder FROM leases WHERE name = 'rollout-controller' AND expires_at > :now"),
                {"now": time.time_ns() // 1_000_000},
            ).one_or_none()
    finally:
        engine.dispose()
    return None if row is None else int(str(row.holder).split(":")[1])  # host:pid:random


def _holders_over(database_url: str, seconds: float) -> list[int | None]:
    seen, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        seen.append(_holder_pid(database_url))
        time.sleep(0.1)
    return seen


def _canary_holding_for_traffic(uri: str) -> None:
    frame = pd.DataFrame({"temp": [0.1, 0.4, 0.8, 0.6], "hum": [0.3, 0.5, 0.7, 0.9]})
    loopml.set_tracking_uri(uri, token=ADMIN)
    try:
        for alias, slope in (("champion", 1.0), ("challenger", 2.0)):
            with loopml.start_run(experiment="bike-demand") as run:
                model = LinearRegression().fit(frame, slope * frame["temp"])
                version = run.log_model(model, name="bike-demand", input_example=frame[:2], register=True)
            loopml.models.set_alias("bike-demand", alias, version.version)
    finally:
        loopml.set_tracking_uri(None)
    with loopml.Client(uri, token=ADMIN) as client:
        client.deployments.deploy("bike-demand", "bike-demand@champion")
        client.deployments.deploy(
            "bike-demand", "bike-demand@challenger", strategy="canary", canary_steps=(10, 50, 100), analysis_seconds=1
        )


def _inconclusive_decisions(uri: str) -> list[int]:
    with loopml.Client(uri, token=ADMIN) as client:
        return [d.time for d in client.deployments.decisions("bike-demand") if d.outcome == "inconclusive"]


def test_one_replica_runs_the_controller_and_another_takes_over_when_it_dies(replicas: list[ServerProcess]) -> None:
    pids = {r.process.pid: r for r in replicas if r.process is not None}
    database_url = replicas[0].database_url
    _canary_holding_for_traffic(replicas[1].uri)
    deployed = time.monotonic()

    seen = _holders_over(database_url, 2 * LEASE_S)
    assert None not in seen and len(set(seen)) == 1, seen  # one holder, renewing, never lost or shared
    [holder] = set(seen)
    assert holder in pids
    # No traffic reaches the canary: each 1 s window ends inconclusive and is said once by the one controller,
    # not once per replica.
    said = _inconclusive_decisions(replicas[0].uri)
    assert 2 <= len(said) <= time.monotonic() - deployed + 1, said

    pids[holder].kill_hard()
    killed_at = time.monotonic()
    while (current := _holder_pid(database_url)) in (holder, None):
        assert time.monotonic() - killed_at < LEASE_S + 5, "no replica took the lease over"
        time.sleep(0.1)
    assert current in pids and current != holder
    assert time.monotonic() - killed_at >= LEASE_S - 0.5  # it waited for the dead holder's lease to expire

    survivor = next(r for pid, r in pids.items() if pid != holder)
    before = len(_inconclusive_decisions(survivor.uri))
    time.sleep(2.5)  # the new holder goes on analysing the canary
    assert len(_inconclusive_decisions(survivor.uri)) > before
