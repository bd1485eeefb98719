"""The pipeline scheduler on a real store (SQLite and PostgreSQL), driven pass by pass with explicit times:
cron ticks fire once, missed ticks fold into one run, dataset versions and pushed events start runs, two
schedulers claim each tick once, and a run whose server died is failed rather than left RUNNING."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loopml.artifacts import open_artifact_store
from loopml.domain import DatasetInput, Principal, Role, RunStatus
from loopml.pipelines import PipelineService
from loopml.pipelines.launch import PipelineLauncher
from loopml.pipelines.scheduler import PipelineScheduler
from loopml.pipelines.schedules import ScheduleService
from loopml.store import MetadataStore
from loopml.store.schedules import FIRING_TAG
from loopml.tracking import TrackingService

EDITOR = Principal("ann", Role.EDITOR, None)
PIPELINE = """
import loopml as lm


@lm.step
def add(x: int, y: int) -> int:
    return x + y


@lm.pipeline
def nightly(x: int = 1):
    return add(x, 1)


@lm.step
def broken(x: int) -> int:
    raise RuntimeError("the source table is empty")


@lm.pipeline
def failing(x: int = 1):
    return broken(x)
"""


@dataclass
class World:
    store: MetadataStore
    schedules: ScheduleService
    pipelines: PipelineService
    tracking: TrackingService
    ref: str

    def scheduler(self, holder: str | None = None) -> PipelineScheduler:
        return PipelineScheduler(
            self.schedules, PipelineLauncher(self.pipelines), interval_seconds=0.1, lease_seconds=30,
            stale_seconds=60, holder=holder,
        )  # fmt: skip


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    source = tmp_path / "nightly_pipeline.py"
    source.write_text(textwrap.dedent(PIPELINE))
    store = MetadataStore.open(db_url)
    blobs = open_artifact_store((tmp_path / "artifacts").as_uri())
    try:
        yield World(
            store, ScheduleService(store), PipelineService(store, blobs), TrackingService(store, blobs), str(source)
        )
    finally:
        store.close()


def next_two_am(after_ms: int) -> int:
    at = datetime.fromtimestamp(after_ms / 1000, UTC)
    tick = at.replace(hour=2, minute=0, second=0, microsecond=0)
    if tick <= at:
        tick += timedelta(days=1)
    return int(tick.timestamp() * 1000)


def run_pass(scheduler: PipelineScheduler, now: int) -> list[str]:
    started = scheduler.tick(now)
    assert scheduler.wait_idle(120)
    return [f.key for f in started]


def test_a_cron_tick_fires_once_and_runs_the_pipeline(world: World) -> None:
    made = world.schedules.create_schedule(
        EDITOR, "nightly", f"{world.ref}:nightly", cron="0 2 * * *", params={"x": 41}, executor="inline"
    )
    scheduler = world.scheduler()
    tick = next_two_am(made.created_at)
    assert run_pass(scheduler, tick - 1) == []  # not yet
    assert run_pass(scheduler, tick + 5_000) == [f"cron:{tick}"]
    assert run_pass(scheduler, tick + 10_000) == []  # the same tick never again
    [firing] = world.schedules.firings(EDITOR, "nightly")
    assert (firing.state, firing.context["tick"]) == ("finished", tick)
    assert firing.run_id is not None
    record = world.pipelines.get_run(EDITOR, firing.run_id)
    assert record.status == "FINISHED"
    assert record.params == {"x": 41}
    assert (record.trigger["kind"], record.trigger["schedule"], record.trigger["tick"]) == ("schedule", "nightly", tick)
    assert run_pass(scheduler, tick + 86_400_000) == [f"cron:{tick + 86_400_000}"]  # the next night


def test_ticks_missed_while_no_server_ran_fold_into_one_run(world: World) -> None:
    made = world.schedules.create_schedule(
        EDITOR, "nightly", f"{world.ref}:nightly", cron="0 2 * * *", executor="inline"
    )
    first = next_two_am(made.created_at)
    latest = first + 4 * 86_400_000
    assert run_pass(world.scheduler(), latest + 3_600_000) == [f"cron:{latest}"]
    [firing] = world.schedules.firings(EDITOR, "nightly")
    assert "5 ticks passed while no server ran the schedule; it ran once, for the latest" in firing.reason
    assert world.schedules.get_schedule(EDITOR, "nightly").last_tick == latest


def test_a_new_dataset_version_starts_one_run(world: World) -> None:
    world.schedules.create_schedule(EDITOR, "retrain", f"{world.ref}:nightly", dataset="bike-hourly", executor="inline")
    scheduler = world.scheduler()
    assert run_pass(scheduler, 0) == []
    run = world.tracking.create_run(EDITOR, world.tracking.get_or_create_experiment(EDITOR, "bike").id)
    versions = [f"{i:064x}" for i in (1, 2, 3)]
    for digest in versions[:2]:  # two versions logged between two passes: one run, for the newest
        world.tracking.log_dataset(EDITOR, run.id, DatasetInput("bike-hourly", digest, (), 10, "hour.csv", "training"))
    world.tracking.log_dataset(EDITOR, run.id, DatasetInput("other", "f" * 64, (), 10, "x.csv", "training"))
    assert run_pass(scheduler, 0) == [f"dataset:{versions[1]}"]
    assert run_pass(scheduler, 0) == []
    world.tracking.log_dataset(EDITOR, run.id, DatasetInput("bike-hourly", versions[2], (), 10, "hour.csv", "training"))
    assert run_pass(scheduler, 0) == [f"dataset:{versions[2]}"]
    states = {f.key: f.state for f in world.schedules.firings(EDITOR, "retrain")}
    assert states == {
        f"dataset:{versions[0]}": "skipped",
        f"dataset:{versions[1]}": "finished",
        f"dataset:{versions[2]}": "finished",
    }


def test_a_pushed_event_starts_a_run_once(world: World) -> None:
    world.schedules.create_schedule(EDITOR, "retrain", f"{world.ref}:nightly", dataset="bike-hourly", executor="inline")
    world.schedules.fire(EDITOR, "retrain", "alert:7", "drift on bike-demand", {"alert": 7})
    world.schedules.fire(EDITOR, "retrain", "alert:7", "the same alert delivered again")
    scheduler = world.scheduler()
    assert run_pass(scheduler, 0) == ["alert:7"]
    assert run_pass(scheduler, 0) == []
    [firing] = world.schedules.firings(EDITOR, "retrain")
    assert firing.run_id is not None
    assert world.pipelines.get_run(EDITOR, firing.run_id).trigger["alert"] == 7


def test_a_failing_run_and_an_unloadable_pipeline_say_why(world: World) -> None:
    world.schedules.create_schedule(EDITOR, "failing", f"{world.ref}:failing", dataset="d", executor="inline")
    world.schedules.create_schedule(EDITOR, "missing", f"{world.ref}:gone", dataset="d", executor="inline")
    world.schedules.fire(EDITOR, "failing", "manual:1", "by hand")
    world.schedules.fire(EDITOR, "missing", "manual:1", "by hand")
    run_pass(world.scheduler(), 0)
    failing, missing = (world.schedules.firings(EDITOR, name)[0] for name in ("failing", "missing"))
    assert failing.state == "failed" and failing.run_id is not None
    assert world.pipelines.get_run(EDITOR, failing.run_id).status == "FAILED"
    assert missing.state == "failed" and missing.run_id is None
    assert "has no attribute 'gone'" in missing.reason


def test_two_schedulers_claim_each_tick_once(world: World) -> None:
    made = world.schedules.create_schedule(
        EDITOR, "nightly", f"{world.ref}:nightly", cron="0 2 * * *", executor="inline"
    )
    first = next_two_am(made.created_at)
    nights = [first + day * 86_400_000 + 60_000 for day in range(6)]
    schedulers = [world.scheduler(f"replica-{i}") for i in range(2)]
    barrier = threading.Barrier(2)
    claimed: list[list[str]] = [[], []]

    def claim(i: int) -> None:
        for now in nights:  # both claim every night at once, with the lease bypassed on purpose
            barrier.wait(30)
            claimed[i] += [f.key for f in schedulers[i].claim_due(now)]

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    together = sorted(claimed[0] + claimed[1])
    assert together == [f"cron:{night - 60_000}" for night in nights]
    # Through the lease only one of the two acts in a pass: it starts every claimed firing, each once.
    later = nights[-1] + 86_400_000
    started = sorted([run_pass(s, later) for s in schedulers], key=len)
    assert started[0] == []
    assert sorted(started[1]) == [f"cron:{night - 60_000}" for night in [*nights, later]]
    runs = {f.run_id for f in world.schedules.firings(EDITOR, "nightly")}
    assert len(runs) == len(nights) + 1 and None not in runs


def test_a_run_whose_server_died_is_failed_not_left_running(world: World, tmp_path: Path) -> None:
    world.schedules.create_schedule(EDITOR, "nightly", f"{world.ref}:nightly", dataset="d", executor="inline")
    firing = world.schedules.fire(EDITOR, "nightly", "manual:1", "by hand")
    assert firing is not None
    # What a server killed mid-run leaves behind: its adopted firing and a RUNNING run tagged with it.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = f"{os.uname().nodename}:{int(dead.stdout)}:0000"
    with world.store.write("test") as unit:
        assert unit.schedules.adopt(firing.id, holder, 0)
    record = world.pipelines.start_run(
        EDITOR, "nightly", f"{world.ref}:nightly", "inline", {"x": 1}, tags={FIRING_TAG: str(firing.id)}
    )
    scheduler = world.scheduler()
    assert run_pass(scheduler, 1_000) == []
    assert world.tracking.get_run(EDITOR, record.run_id).status is RunStatus.FAILED
    [ended] = world.schedules.firings(EDITOR, "nightly")
    assert ended.state == "failed"
    assert f"the server running it ({holder}) stopped before the run ended" in ended.reason


def test_a_silent_server_is_failed_after_the_stale_interval(world: World) -> None:
    world.schedules.create_schedule(EDITOR, "nightly", f"{world.ref}:nightly", dataset="d", executor="inline")
    firing = world.schedules.fire(EDITOR, "nightly", "manual:1", "by hand")
    assert firing is not None
    with world.store.write("test") as unit:  # a server on another host, alive or not: only its heartbeat tells
        assert unit.schedules.adopt(firing.id, "elsewhere:123:abcd", 1_000)
    scheduler = world.scheduler()
    assert run_pass(scheduler, 1_000 + 59_000) == []
    assert world.schedules.firings(EDITOR, "nightly")[0].state == "pending"
    run_pass(scheduler, 1_000 + 61_000)
    assert world.schedules.firings(EDITOR, "nightly")[0].state == "failed"
