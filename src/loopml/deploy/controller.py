"""The rollout controller: moves every canary in progress through its steps, on one server replica at a time.

Each `tick` (every `interval_seconds` in a background thread of `loopml server`) first takes or renews the
`rollout-controller` lease in the database; a replica without the lease does nothing. For each progressing
canary it analyses the current step's window, from the step's start to now, read from the request log:

- failed (a check over its threshold, with at least `min_requests` on each side): acted on at once, even
  before the window ends, so a bad canary is rolled back within its analysis window;
- success, once the step has been held for `analysis_seconds`: the next step's weight, or promotion after
  the last step;
- inconclusive (too little traffic, or a check that cannot be computed yet) once the window is over: hold,
  keep collecting, and record it (once per analysis window, so a quiet deployment does not flood the audit
  log).

Labels that have arrived for the window's requests (feedback by request id) are read from the store with it.

Every decision is recorded with its numbers (`rollout_decisions` and the audit event
`deployment.rollout_decision`).
"""

from __future__ import annotations

import logging
import time

from loopml.deploy.analysis import Thresholds, WindowStats, analyze, explain
from loopml.deploy.service import DeployService
from loopml.domain import Deployment, RolloutDecision
from loopml.store.leases import LeasedLoop

__all__ = ["ROLLOUT_LEASE", "RolloutController"]

ROLLOUT_LEASE = "rollout-controller"
logger = logging.getLogger("loopml.deploy")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class RolloutController(LeasedLoop):
    """Advances canary rollouts; `start()` runs `tick` in a daemon thread until `stop()`."""

    def __init__(
        self,
        service: DeployService,
        interval_seconds: float = 5.0,
        lease_seconds: float = 30.0,
        holder: str | None = None,
    ) -> None:
        super().__init__(service.store, ROLLOUT_LEASE, interval_seconds, lease_seconds, holder)
        self.service = service

    def tick(self, now_ms: int | None = None) -> list[RolloutDecision]:
        """One pass over the progressing canaries; the decisions taken (empty without the lease)."""
        at = _now_ms() if now_ms is None else now_ms
        if not self.holds_lease(at):
            return []
        decisions = []
        for deployment in self.service.progressing():
            try:
                decision = self._step(deployment, at)
            except Exception:  # one broken deployment must not stop the others
                logger.exception("rollout analysis of deployment %s failed", deployment.name)
                continue
            if decision is not None:
                decisions.append(decision)
        return decisions

    def _step(self, deployment: Deployment, now_ms: int) -> RolloutDecision | None:
        stable, candidate = deployment.stable, deployment.role("canary")
        if stable is None or candidate is None:
            return None
        limits = Thresholds.from_mapping(deployment.thresholds)
        start = deployment.updated_at
        window_ms = deployment.analysis_seconds * 1000
        stats = self.service.window_stats(deployment.name, start, now_ms)
        empty = WindowStats.empty()
        outcome, numbers = analyze(
            stats.get((stable.model, stable.version), empty),
            stats.get((candidate.model, candidate.version), empty),
            limits,
        )
        numbers = {
            **numbers,
            "window_start_ms": start,
            "window_end_ms": now_ms,
            "stable": stable.label,
            "candidate": candidate.label,
            "candidate_weight": candidate.weight,
        }
        window_over = now_ms >= start + window_ms
        if outcome == "failed" or (outcome == "success" and window_over):
            return self.service.apply_analysis(deployment, outcome, numbers, explain(outcome, numbers), now_ms)
        if outcome == "inconclusive" and window_over:
            last = self.service.last_decision(deployment.name)
            if last is None or last.revision != deployment.revision or last.time + window_ms <= now_ms:
                return self.service.apply_analysis(deployment, outcome, numbers, explain(outcome, numbers), now_ms)
        return None

    def background_tick(self) -> None:
        self.tick()
