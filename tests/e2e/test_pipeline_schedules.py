"""Pipeline schedules in real `loopml server` processes on one PostgreSQL: a server killed with SIGKILL during a
scheduled run leaves no run RUNNING after a restart, and two servers start each tick's run once.

Nothing here waits for a fixed time and then asserts: every wait polls for a state with a generous deadline,
and the assertions are about what happened (how many runs per firing, which ticks fired), not when."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from loopml.domain import Principal, Role
from loopml.pipelines import ScheduleService
from loopml.store import MetadataStore
from loopml.store.schedules import FIRING_TAG

from .conftest import ServerProcess, free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
EDITOR = Principal("ann", Role.EDITOR, None)
FAST = {
    "LOOPML_SCHEDULE_INTERVAL_SECONDS": "0.2",
    "LOOPML_SCHEDULE_LEASE_SECONDS": "3",  # a loaded CI machine may stall a replica for a second; not for 3
    "LOOPML_SCHEDULE_STALE_SECONDS": "5",
}
PIPELINE = """
import os
import time
from pathlib import Path

import loopml as lm

GATE = Path({gate!r})


@lm.step
def wait_for_gate(tick: int) -> int:
    (GATE / f"started-{{os.getpid()}}-{{time.time_ns()}}").touch()
    while not (GATE / "open").exists():
        time.sleep(0.05)
    return tick


@lm.pipeline
def gated(tick: int = 0):
    return wait_for_gate(tick)
"""


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s")


def firings(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT f.id, f.key, f.state, f.holder, f.run_id, f.reason, f.fired_at, r.status,"
                        " (SELECT count(*) FROM tags t WHERE t.key = :tag AND t.value = CAST(f.id AS TEXT)) AS runs"
                        " FROM pipeline_firings f LEFT JOIN runs r ON r.id = f.run_id ORDER BY f.id"
                    ),
                    {"tag": FIRING_TAG},
                )
            )
    finally:
        engine.dispose()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "gate"
    folder.mkdir()
    yield folder
    (folder / "open").touch()  # let any step process a killed server left behind finish and exit


def schedule(url: str, tmp_path: Path, gate: Path, cron: str) -> None:
    source = tmp_path / "gated_pipeline.py"
    source.write_text(textwrap.dedent(PIPELINE.format(gate=str(gate))))
    store = MetadataStore.open(url)
    try:
        ScheduleService(store).create_schedule(EDITOR, "gated", f"{source}:gated", cron=cron)
    finally:
        store.close()


def test_a_server_killed_during_a_scheduled_run_leaves_no_run_running(pg_url: str, tmp_path: Path, gate: Path) -> None:
    first = ServerProcess(tmp_path / "first", pg_url, free_port(), extra_env=FAST)
    second = ServerProcess(tmp_path / "second", pg_url, free_port(), extra_env=FAST)
    try:
        first.start()
        schedule(pg_url, tmp_path, gate, "* * * * * */3")  # every 3 s
        running = wait_for("a scheduled run to start", lambda: [f for f in firings(pg_url) if f.status == "RUNNING"])
        wait_for("its step to start", lambda: list(gate.glob("started-*")))
        first.kill_hard()
        killed_at = time.time_ns() // 1_000_000
        second.start()
        # The restarted server fails every run the dead one held: none stays RUNNING.
        dead = {f.id for f in running}
        wait_for(
            "the dead server's runs to be failed",
            lambda: all(f.state == "failed" and f.status == "FAILED" for f in firings(pg_url) if f.id in dead),
        )
        for firing in firings(pg_url):
            if firing.id in dead:
                assert "stopped before the run ended" in firing.reason
        (gate / "open").touch()
        # Then the schedule goes on: a tick after the restart runs to its end.
        wait_for(
            "a run after the restart to finish",
            lambda: [f for f in firings(pg_url) if f.fired_at > killed_at and f.state == "finished"],
        )
        seen = firings(pg_url)
        assert len({f.key for f in seen}) == len(seen)  # each tick fired once...
        assert all(f.runs <= 1 for f in seen)  # ...and started at most one run
        assert not [f for f in seen if f.status == "RUNNING" and f.holder.split(":")[1] != str(second.process.pid)]
    finally:
        (gate / "open").touch()
        second.stop()
        first.stop()


def test_two_servers_run_each_tick_once(pg_url: str, tmp_path: Path, gate: Path) -> None:
    (gate / "open").touch()
    servers = [ServerProcess(tmp_path / f"replica-{i}", pg_url, free_port(), extra_env=FAST) for i in range(2)]
    try:
        for server in servers:  # one after the other: the first start creates the schema
            server.start()  # a start that fails still leaves a process for `stop()` below
        schedule(pg_url, tmp_path, gate, "* * * * * *")  # every second
        wait_for("five finished runs", lambda: len([f for f in firings(pg_url) if f.state == "finished"]) >= 5)
    finally:
        for server in servers:
            server.stop()
    seen = [f for f in firings(pg_url) if f.state in ("finished", "failed")]
    ticks = sorted(int(f.key.removeprefix("cron:")) for f in seen)
    assert len(ticks) == len(set(ticks)) >= 5
    assert all(f.runs == 1 for f in seen), [(f.key, f.runs) for f in seen]
    assert {f.status for f in seen} == {"FINISHED"}, [(f.key, f.reason) for f in seen if f.status != "FINISHED"]
