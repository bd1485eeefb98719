"""Runs every monitor on a schedule inside `loopml server`, on exactly one replica (a lease row in the store).

Each tick runs all monitors; a run is incremental (only new complete windows and windows whose label delay
just passed are computed), so a tick with nothing new costs a few small queries per monitor.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading

from loopml.domain import Principal, Role
from loopml.monitoring.service import MonitoringService, RunResult
from loopml.store.audit import now_ms

__all__ = ["MONITOR_LEASE", "MonitorScheduler"]

MONITOR_LEASE = "monitor-scheduler"
logger = logging.getLogger(__name__)


class MonitorScheduler:
    """`start()` runs `tick` every `interval_seconds` in a daemon thread until `stop()`."""

    def __init__(
        self,
        service: MonitoringService,
        interval_seconds: float = 60.0,
        lease_seconds: float = 180.0,
        holder: str | None = None,
    ) -> None:
        if interval_seconds <= 0 or lease_seconds <= interval_seconds:
            raise ValueError("interval_seconds must be positive and shorter than lease_seconds")
        self.service = service
        self.interval_seconds = interval_seconds
        self.lease_seconds = lease_seconds
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.principal = Principal(actor="monitor-scheduler", role=Role.ADMIN, project=None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: int | None = None) -> list[RunResult]:
        """Run every monitor if this replica holds the lease; the results (empty without the lease)."""
        at = now_ms() if now is None else now
        with self.service.store.write(self.holder) as unit:
            if not unit.leases.acquire(MONITOR_LEASE, self.holder, at, int(self.lease_seconds * 1000)):
                return []
        return self.service.run_all(self.principal, at)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="loopml-monitor-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        try:
            with self.service.store.write(self.holder) as unit:
                unit.leases.release(MONITOR_LEASE, self.holder)
        except Exception:  # the store may be closed already; the lease then expires on its own
            logger.debug("could not release the monitor lease", exc_info=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for result in self.tick():
                    for problem in result.delivery_errors:
                        logger.warning("monitor %s: %s", result.monitor, problem)
            except Exception:  # the database may be briefly unreachable: try again next interval
                logger.exception("monitor scheduler tick failed")
            self._stop.wait(self.interval_seconds)
