"""The rollout controller over a synthetic request log: automatic rollback of a bad canary within its
analysis window (20% errors, or +50 ms), promotion of a healthy one through its steps, holding on too little
traffic, the failure limit, and the lease that lets only one controller act."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from loopml.deploy import RolloutController
from loopml.domain import Deployment
from loopml.serving.records import RequestRecord
from loopml.serving.request_log import RequestLog
from loopml.store import read_events

from .conftest import EDITOR, VIEWER, World

WINDOW_S = 60


def traffic(
    log_dir: Path,
    start_ms: int,
    model_version: tuple[int, str],
    n: int,
    *,
    error_share: float = 0.0,
    latency_ms: float = 10.0,
    shift: float = 0.0,
    seed: int = 0,
    sealed: bool = True,
    span_ms: int = 30_000,
) -> None:
    """`n` requests of `bike/<version>` spread over the first `span_ms` after `start_ms`."""
    version, role = model_version
    rng = np.random.default_rng(seed)
    errors = set(rng.choice(n, round(n * error_share), replace=False).tolist())
    log = RequestLog(log_dir, flush_ms=20)
    try:
        for i in range(n):
            failed = i in errors
            log.append(
                RequestRecord(
                    request_id=f"{seed}-{version}-{i}",
                    time_ms=start_ms + 1 + i * span_ms // n,
                    deployment="bike-demand",
                    model="bike",
                    version=version,
                    role=role,
                    inputs={"hour": [i % 24]},
                    outputs=[] if failed else [float(rng.normal(100.0 + shift, 10.0))],
                    latency_ms=float(max(0.1, rng.normal(latency_ms, 1.0))),
                    status=500 if failed else 200,
                    protocol="native",
                    sticky_key=None,
                )
            )
        if sealed:
            log.seal()
        else:
            log.flush()
    finally:
        if sealed:
            log.close()
        else:
            log._stop.set()  # leave the open segment on disk, as a running replica would


def start_canary(world: World, **kwargs: object) -> Deployment:
    world.deploy.deploy(EDITOR, "bike-demand", "bike@champion")
    return world.deploy.deploy(
        EDITOR,
        "bike-demand",
        "bike@challenger",
        strategy="canary",
        canary_steps=(10, 50, 100),
        analysis_seconds=WINDOW_S,
        **kwargs,  # type: ignore[arg-type]
    )


def decisions_in_audit(world: World) -> list[dict[str, object]]:
    with world.store.read() as unit:
        return [e.after for e in read_events(unit.connection) if e.action == "deployment.rollout_decision" and e.after]


def test_a_canary_failing_20_percent_of_requests_is_rolled_back_within_its_window(world: World) -> None:
    canary = start_canary(world)
    traffic(world.log_dir, canary.updated_at, (1, "stable"), 900, seed=1)
    traffic(world.log_dir, canary.updated_at, (2, "canary"), 100, error_share=0.2, seed=2)
    controller = RolloutController(world.deploy)
    within_window = canary.updated_at + 31_000
    [decision] = controller.tick(within_window)
    assert (decision.outcome, decision.action, decision.step) == ("failed", "rollback", 1)
    assert decision.metrics["candidate_error_rate"] == 0.2
    assert decision.metrics["stable_error_rate"] == 0.0
    assert decision.metrics["failed_checks"] == ["error_rate"]
    now = world.deploy.status(VIEWER, "bike-demand")
    assert now.state == "rolled_back"
    assert [(v.version, v.weight) for v in now.versions] == [(1, 100), (2, 0)]  # the stable version kept serving
    [audited] = decisions_in_audit(world)
    assert audited["outcome"] == "failed" and audited["action"] == "rollback"
    assert audited["metrics"]["candidate_requests"] == 100  # type: ignore[index]
    assert "error rate 20.00%" in str(audited["reason"])
    assert controller.tick(within_window + 60_000) == []  # nothing left in progress


def test_a_canary_adding_50_ms_is_rolled_back_and_the_numbers_are_audited(world: World) -> None:
    canary = start_canary(world)
    traffic(world.log_dir, canary.updated_at, (1, "stable"), 500, latency_ms=10, seed=1)
    traffic(world.log_dir, canary.updated_at, (2, "canary"), 100, latency_ms=60, seed=2, sealed=False)
    [decision] = RolloutController(world.deploy).tick(canary.updated_at + 31_000)
    assert (decision.outcome, decision.action) == ("failed", "rollback")
    assert decision.metrics["failed_checks"] == ["p99_latency"]
    assert 45 < decision.metrics["p99_increase_ms"] < 55
    assert world.deploy.status(VIEWER, "bike-demand").state == "rolled_back"
    [audited] = decisions_in_audit(world)
    assert audited["metrics"]["p99_increase_ms"] == decision.metrics["p99_increase_ms"]  # type: ignore[index]


def test_a_healthy_canary_is_promoted_through_its_steps(world: World) -> None:
    canary = start_canary(world)
    controller = RolloutController(world.deploy)
    traffic(world.log_dir, canary.updated_at, (1, "stable"), 900, seed=1)
    traffic(world.log_dir, canary.updated_at, (2, "canary"), 100, seed=2)
    assert controller.tick(canary.updated_at + 30_500) == []  # healthy, but the step is held for its window
    [first] = controller.tick(canary.updated_at + WINDOW_S * 1000)
    assert (first.outcome, first.action) == ("success", "advance")
    step2 = world.deploy.status(VIEWER, "bike-demand")
    assert (step2.step_index, [(v.version, v.weight) for v in step2.versions]) == (1, [(1, 50), (2, 50)])
    traffic(world.log_dir, step2.updated_at, (1, "stable"), 200, seed=3)
    traffic(world.log_dir, step2.updated_at, (2, "canary"), 200, seed=4)
    [second] = controller.tick(step2.updated_at + WINDOW_S * 1000)
    assert (second.outcome, second.action, second.step) == ("success", "promote", 2)
    done = world.deploy.status(VIEWER, "bike-demand")
    assert (done.state, [(v.version, v.weight, v.role) for v in done.versions]) == ("promoted", [(2, 100, "stable")])
    assert [d.action for d in world.deploy.decisions(VIEWER, "bike-demand")] == ["advance", "promote"]
    assert world.registry.resolve(VIEWER, "bike@champion").version == 2  # the alias the deployment follows
    with world.store.read() as unit:
        [moved] = [e for e in read_events(unit.connection) if e.action == "model.set_alias" and e.after][-1:]
    assert (moved.actor, moved.after) == (  # type: ignore[union-attr]
        "loopml:rollout-controller",
        {"alias": "champion", "version": 2, "reason": "promotion of bike/2 in deployment 'bike-demand'"},
    )
    assert [h.reason.split(":")[0] for h in world.deploy.history(VIEWER, "bike-demand")][:2] == [
        "analysis passed at the last step",
        "analysis passed at 10%",
    ]


def test_too_little_traffic_holds_and_says_so_once_per_window(world: World) -> None:
    canary = start_canary(world)
    traffic(world.log_dir, canary.updated_at, (1, "stable"), 300, seed=1)
    traffic(world.log_dir, canary.updated_at, (2, "canary"), 10, error_share=0.5, seed=2)
    controller = RolloutController(world.deploy)
    end = canary.updated_at + WINDOW_S * 1000
    [held] = controller.tick(end)
    assert (held.outcome, held.action) == ("inconclusive", "hold")
    assert "too little traffic" in held.reason
    assert controller.tick(end + 5_000) == []  # already said for this window
    assert [d.outcome for d in controller.tick(end + WINDOW_S * 1000)] == ["inconclusive"]
    assert world.deploy.status(VIEWER, "bike-demand").state == "progressing"


def test_below_the_failure_limit_a_failed_step_starts_over(world: World) -> None:
    canary = start_canary(world, thresholds={"failure_limit": 2})
    traffic(world.log_dir, canary.updated_at, (1, "stable"), 300, seed=1)
    traffic(world.log_dir, canary.updated_at, (2, "canary"), 100, error_share=0.3, seed=2)
    controller = RolloutController(world.deploy)
    [first] = controller.tick(canary.updated_at + 31_000)
    assert (first.outcome, first.action, first.metrics["failures"]) == ("failed", "hold", 1)
    again = world.deploy.status(VIEWER, "bike-demand")
    assert (again.state, again.failures, again.revision) == ("progressing", 1, canary.revision + 1)
    traffic(world.log_dir, again.updated_at, (1, "stable"), 300, seed=3)
    traffic(world.log_dir, again.updated_at, (2, "canary"), 100, error_share=0.3, seed=4)
    [second] = controller.tick(again.updated_at + 31_000)
    assert (second.action, second.metrics["failures"]) == ("rollback", 2)


def test_only_the_controller_holding_the_lease_acts(world: World) -> None:
    canary = start_canary(world)
    traffic(world.log_dir, canary.updated_at, (1, "stable"), 300, seed=1)
    traffic(world.log_dir, canary.updated_at, (2, "canary"), 100, error_share=0.3, seed=2)
    one = RolloutController(world.deploy, holder="replica-1", lease_seconds=30)
    two = RolloutController(world.deploy, holder="replica-2", lease_seconds=30)
    at = canary.updated_at + 31_000
    assert one.holds_lease(at)
    assert two.tick(at) == []
    assert world.deploy.status(VIEWER, "bike-demand").state == "progressing"
    assert [d.action for d in one.tick(at + 1_000)] == ["rollback"]
    assert not two.holds_lease(at + 29_000)
    assert two.holds_lease(at + 31_001)  # replica-1 stopped renewing: the lease expired and moved
    assert not one.holds_lease(at + 32_000)


def test_the_background_thread_rolls_back_and_releases_its_lease(world: World) -> None:
    canary = start_canary(world)
    traffic(world.log_dir, canary.updated_at, (1, "stable"), 300, seed=1, span_ms=100)
    traffic(world.log_dir, canary.updated_at, (2, "canary"), 100, error_share=0.3, seed=2, span_ms=100)
    controller = RolloutController(world.deploy, interval_seconds=0.05, lease_seconds=5, holder="thread")
    controller.start()
    try:
        deadline = time.monotonic() + 30
        while world.deploy.status(VIEWER, "bike-demand").state != "rolled_back":
            assert time.monotonic() < deadline, "the controller thread did not roll back"
            time.sleep(0.05)
    finally:
        controller.stop()
    with world.store.read() as unit:
        assert unit.leases.holder("rollout-controller", time.time_ns() // 1_000_000) is None


def test_a_paused_canary_is_not_judged_until_resumed(world: World) -> None:
    canary = start_canary(world)
    traffic(world.log_dir, canary.updated_at, (1, "stable"), 900, seed=1)
    traffic(world.log_dir, canary.updated_at, (2, "canary"), 100, error_share=0.2, seed=2)
    controller = RolloutController(world.deploy)
    paused = world.deploy.pause(EDITOR, "bike-demand", reason="look at the errors first")
    assert controller.tick(canary.updated_at + 31_000) == []  # failing, but paused: no decision, split kept
    assert world.deploy.status(VIEWER, "bike-demand").versions == paused.versions
    resumed = world.deploy.resume(EDITOR, "bike-demand", reason="go on")
    traffic(world.log_dir, resumed.updated_at, (1, "stable"), 900, seed=3)
    traffic(world.log_dir, resumed.updated_at, (2, "canary"), 100, error_share=0.2, seed=4)
    [decision] = controller.tick(resumed.updated_at + 31_000)
    assert decision.metrics["window_start_ms"] == resumed.updated_at  # the window starts again at the resume
    assert decision.action == "rollback"


def test_an_analysis_computed_before_a_pause_is_dropped(world: World) -> None:
    canary = start_canary(world)  # the controller read this revision, then someone paused before it wrote
    world.deploy.pause(EDITOR, "bike-demand", reason="hold on")
    numbers = {"window_start_ms": canary.updated_at, "window_end_ms": canary.updated_at + 1}
    assert world.deploy.apply_analysis(canary, "success", numbers, "passed", canary.updated_at + 1) is None
    paused = world.deploy.status(VIEWER, "bike-demand")
    assert (paused.state, paused.versions) == ("paused", canary.versions)  # not advanced
    assert world.deploy.decisions(VIEWER, "bike-demand") == []
