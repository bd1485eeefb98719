"""Runs every monitor on a schedule inside `loopml server`, on exactly one replica (a lease row in the store).

Each tick runs all monitors; a run is incremental (only new complete windows and windows whose label delay
just passed are computed), so a tick with nothing new costs a few small queries per monitor.
"""

from __future__ import annotations

import logging

from loopml.domain import Principal, Role
from loopml.monitoring.service import MonitoringService, RunResult
from loopml.store.audit import now_ms
from loopml.store.leases import LeasedLoop

__all__ = ["MONITOR_LEASE", "MonitorScheduler"]

MONITOR_LEASE = "monitor-scheduler"
logger = logging.getLogger(__name__)


class MonitorScheduler(LeasedLoop):
    """`start()` runs `tick` every `interval_seconds` in a daemon thread until `stop()`."""

    def __init__(
        self,
        service: MonitoringService,
        interval_seconds: float = 60.0,
        lease_seconds: float = 180.0,
        holder: str | None = None,
    ) -> None:
        super().__init__(service.store, MONITOR_LEASE, interval_seconds, lease_seconds, holder)
        self.service = service
        self.principal = Principal(actor="monitor-scheduler", role=Role.ADMIN, project=None)

    def tick(self, now: int | None = None) -> list[RunResult]:
        """Run every monitor if this replica holds the lease; the results (empty without the lease)."""
        at = now_ms() if now is None else now
        if not self.holds_lease(at):
            return []
        return self.service.run_all(self.principal, at)

    def stop(self, timeout: float = 30.0) -> None:  # a monitor run may take a while to finish
        super().stop(timeout)

    def background_tick(self) -> None:
        for result in self.tick():
            for problem in result.delivery_errors:
                logger.warning("monitor %s: %s", result.monitor, problem)
