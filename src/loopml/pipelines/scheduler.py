"""The pipeline scheduler: fires schedules inside `loopml server`, on one replica at a time.

Every pass (every `interval_seconds`, on every replica) renews the heartbeat of the scheduled runs this
replica is running. The replica holding the `pipeline-scheduler` lease then

1. fails the runs of firings whose server died (no heartbeat for `stale_seconds`, or a holder process on
   this host that no longer exists): the run is marked FAILED with the reason, never left RUNNING;
2. asks every trigger what is due (`triggers.trigger_kinds()`) and claims each firing by its key, in the
   transaction that also moves the schedule's cron position: a key is claimed once, whichever replica
   asks, and ticks missed while no server ran become one firing, for the latest tick;
3. adopts the pending firings (its own and pushed ones, `ScheduleService.fire`) and starts each run in a
   thread of its own through the `Launcher`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Protocol

from loopml.domain import Principal, Role, RunStatus
from loopml.domain.schedules import Firing, Schedule
from loopml.pipelines.schedules import ScheduleService
from loopml.pipelines.triggers import trigger_kinds
from loopml.store.audit import now_ms
from loopml.store.leases import LeasedLoop

__all__ = ["SCHEDULER_ACTOR", "SCHEDULER_LEASE", "Launcher", "PipelineScheduler"]

SCHEDULER_LEASE = "pipeline-scheduler"
SCHEDULER_ACTOR = "loopml:pipeline-scheduler"
logger = logging.getLogger("loopml.pipelines")


class Launcher(Protocol):
    """Runs the pipeline of a firing to its end and answers the run's final status. It calls `started(run_id)`
    as soon as the run exists, and tags the run with `FIRING_TAG` = the firing's id."""

    def __call__(self, schedule: Schedule, firing: Firing, started: Callable[[str], None]) -> RunStatus: ...


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class PipelineScheduler(LeasedLoop):
    def __init__(
        self,
        service: ScheduleService,
        launcher: Launcher,
        interval_seconds: float = 5.0,
        lease_seconds: float = 30.0,
        stale_seconds: float = 60.0,
        holder: str | None = None,
    ) -> None:
        super().__init__(service.store, SCHEDULER_LEASE, interval_seconds, lease_seconds, holder)
        if stale_seconds <= interval_seconds:
            raise ValueError("stale_seconds must be longer than interval_seconds: heartbeats come once per interval")
        self.service = service
        self.launcher = launcher
        self.stale_seconds = stale_seconds
        self.principal = Principal(actor=SCHEDULER_ACTOR, role=Role.ADMIN, project=None)
        self._runs: dict[int, threading.Thread] = {}
        self._runs_lock = threading.Lock()

    # -- one pass ----------------------------------------------------------------------------------------

    def tick(self, now: int | None = None) -> list[Firing]:
        """One pass; the firings this replica started (empty without the lease)."""
        at = now_ms() if now is None else now
        self.heartbeat(at)
        if not self.holds_lease(at):
            return []
        self.recover(at)
        self.claim_due(at)
        return self.start_pending(at)

    def background_tick(self) -> None:
        self.tick()

    def heartbeat(self, at: int) -> None:
        with self._runs_lock:
            if not self._runs:
                return
        with self.service.store.write(self.holder) as unit:
            unit.schedules.heartbeat(self.holder, at)

    def recover(self, at: int) -> list[Firing]:
        """Fail the runs of firings whose server stopped; the firings it ended."""
        cutoff = at - int(self.stale_seconds * 1000)
        host = socket.gethostname()
        with self.service.store.read() as unit:
            candidates = {f.id: f for f in unit.schedules.stale(cutoff)}
            for firing in unit.schedules.held(f"{host}:"):
                pid = firing.holder.split(":")[1] if firing.holder and firing.holder.count(":") >= 2 else ""
                if firing.holder != self.holder and pid.isdigit() and not _pid_alive(int(pid)):
                    candidates[firing.id] = firing
        ended = []
        for firing in candidates.values():
            if firing.holder == self.holder:
                continue
            why = (
                f"the server running it ({firing.holder}) stopped before the run ended; the run was marked "
                "FAILED (`loopml pipeline retry RUN_ID` reruns it from its failed steps, reusing finished outputs)"
            )
            with self.service.store.write(SCHEDULER_ACTOR) as unit:
                for run_id in unit.schedules.running_runs_of(firing):
                    unit.runs.set_status(run_id, RunStatus.FAILED, at)
                    unit.audit.record(
                        "pipeline_run.fail_orphaned", "run", run_id, after={"reason": why, "firing": firing.id}
                    )
                if unit.schedules.end(firing, "failed", why):
                    ended.append(firing)
                    logger.warning("schedule %s, firing %s: %s", firing.schedule, firing.key, why)
        return ended

    def claim_due(self, at: int) -> list[Firing]:
        """Claim what every trigger says is due; the firings claimed by this pass."""
        claimed = []
        with self.service.store.read() as unit:
            schedules = unit.schedules.schedules()
        for schedule in schedules:
            for kind, trigger in trigger_kinds().items():
                try:
                    with self.service.store.write(SCHEDULER_ACTOR) as unit:
                        for due in trigger(unit, schedule, at):
                            for covered in due.covers:
                                unit.schedules.claim(
                                    schedule, covered, f"covered by {due.key}", {}, None, at, state="skipped"
                                )
                            firing = unit.schedules.claim(
                                schedule, due.key, due.reason, due.context, None, at, last_tick=due.last_tick
                            )
                            if firing is not None:
                                claimed.append(firing)
                except Exception:  # one broken schedule or trigger must not stop the others
                    logger.exception("the %s trigger of schedule %s failed", kind, schedule.name)
        return claimed

    def start_pending(self, at: int) -> list[Firing]:
        started = []
        with self.service.store.read() as unit:
            pending = unit.schedules.unowned()
        for firing in pending:
            with self.service.store.write(SCHEDULER_ACTOR) as unit:
                if not unit.schedules.adopt(firing.id, self.holder, at):
                    continue
                schedule = unit.schedules.get(firing.schedule)
            thread = threading.Thread(
                target=self._run_firing, args=(schedule, firing), name=f"loopml-schedule-{firing.id}", daemon=True
            )
            with self._runs_lock:
                self._runs[firing.id] = thread
            thread.start()
            started.append(firing)
        return started

    # -- one scheduled run ---------------------------------------------------------------------------------

    def _run_firing(self, schedule: Schedule, firing: Firing) -> None:
        run_ids: list[str] = []

        def started(run_id: str) -> None:
            run_ids.append(run_id)
            with self.service.store.write(SCHEDULER_ACTOR) as unit:
                unit.schedules.started(firing.id, run_id, self.holder)

        try:
            status = self.launcher(schedule, firing, started)
            state, reason = ("finished", None) if status is RunStatus.FINISHED else ("failed", None)
        except Exception as error:  # the pipeline could not be loaded or started
            logger.exception("schedule %s, firing %s could not run", schedule.name, firing.key)
            state, reason = "failed", f"{firing.reason}; it could not run: {type(error).__name__}: {error}"
        try:
            with self.service.store.write(SCHEDULER_ACTOR) as unit:
                current = firing if not run_ids else _with_run(firing, run_ids[-1])
                unit.schedules.end(current, state, reason, holder=self.holder)
        except Exception:  # the store is down: the firing goes stale and the run is judged by the next pass
            logger.exception("could not record the end of schedule %s, firing %s", schedule.name, firing.key)
        finally:
            with self._runs_lock:
                self._runs.pop(firing.id, None)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for the scheduled runs this replica started; True if none is left running."""
        with self._runs_lock:
            threads = list(self._runs.values())
        for thread in threads:
            thread.join(timeout)
        with self._runs_lock:
            return not self._runs


def _with_run(firing: Firing, run_id: str) -> Firing:
    from dataclasses import replace

    return replace(firing, run_id=run_id)
