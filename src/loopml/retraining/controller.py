"""The retraining controller: evaluates every policy's triggers and moves every loop one state on, inside
`loopml server`, on one replica at a time (the `retrain-controller` lease).

A loop walks triggered -> training -> registered -> evaluating -> gated -> [awaiting_approval] ->
rolling_out -> succeeded, or ends failed / rejected. Each move is a compare-and-set on the loop's row and an
audit event, so a pass that repeats after a crash redoes nothing twice:

- training runs the pipeline in a thread of this server, which renews the loop's heartbeat; a loop whose
  server stopped (no heartbeat for `stale_seconds`, or its process is gone) is resumed if its pipeline run
  finished, else failed with the reason (its pipeline run is marked FAILED), never left running;
- registration looks for a version already registered from the pipeline's step run first (idempotent by
  loop: a pipeline run belongs to one loop);
- rollout looks at the deployment before deploying: a deployment that already lists the challenger (the
  server stopped between deploying and recording it) is adopted, not deployed again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from loopml.domain import Principal, Role, RunStatus
from loopml.domain.retrain import WINDOW_TRIGGERS, RetrainLoop, RetrainPolicy, RetrainTrigger
from loopml.errors import LoopmlError, NotFound
from loopml.retraining.policies import latest_tick
from loopml.retraining.service import RetrainService
from loopml.store.audit import now_ms
from loopml.store.leases import LeasedLoop

__all__ = ["RETRAIN_ACTOR", "RETRAIN_LEASE", "RetrainController"]

RETRAIN_LEASE = "retrain-controller"
RETRAIN_ACTOR = "loopml:retrain-controller"
CHAMPION = "champion"
logger = logging.getLogger("loopml.retrain")

Due = tuple[str, str, dict[str, Any], int | None]
"""(key, reason, context, cron tick to record)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder_gone(holder: str | None) -> bool:
    """True when `holder` (host:pid:token) is a process of this host that no longer exists."""
    if holder is None:
        return True
    parts = holder.split(":")
    return len(parts) >= 3 and parts[0] == socket.gethostname() and parts[1].isdigit() and not _pid_alive(int(parts[1]))


class RetrainController(LeasedLoop):
    """`start()` runs `tick` every `interval_seconds` in a daemon thread until `stop()`. `pipelines` is a
    `PipelineService`, `deploy` a `DeployService`; `executor` runs the pipelines' steps."""

    def __init__(
        self,
        service: RetrainService,
        pipelines: Any,
        deploy: Any,
        interval_seconds: float = 5.0,
        lease_seconds: float = 30.0,
        stale_seconds: float = 60.0,
        holder: str | None = None,
        executor: str = "process",
    ) -> None:
        super().__init__(service.store, RETRAIN_LEASE, interval_seconds, lease_seconds, holder)
        if stale_seconds <= interval_seconds:
            raise ValueError("stale_seconds must be longer than interval_seconds: heartbeats come once per interval")
        self.service = service
        self.store = service.store
        self.registry = service.registry
        self.pipelines = pipelines
        self.deploy = deploy
        self.stale_seconds = stale_seconds
        self.executor = executor
        self.principal = Principal(actor=RETRAIN_ACTOR, role=Role.ADMIN, project=None)
        self._training: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    # -- one pass ----------------------------------------------------------------------------------

    def tick(self, now: int | None = None) -> list[RetrainLoop]:
        """One pass: heartbeats, then (with the lease) new loops and one step of every active loop. Answers the
        loops this pass started."""
        at = now_ms() if now is None else now
        self.heartbeat(at)
        if not self.holds_lease(at):
            return []
        started = self.start_due(at)
        with self.store.read() as unit:
            active = unit.retrain.active()
        for loop in active:
            try:
                self.advance(loop, at)
            except Exception:  # one broken loop must not stop the others
                logger.exception("retraining loop %s could not move on", loop.id)
        return started

    def background_tick(self) -> None:
        self.tick()

    def heartbeat(self, at: int) -> None:
        with self._lock:
            if not self._training:
                return
        with self.store.write(self.holder) as unit:
            unit.retrain.heartbeat(self.holder, at)

    # -- triggers and guards -----------------------------------------------------------------------

    def start_due(self, at: int) -> list[RetrainLoop]:
        with self.store.read() as unit:
            policies = unit.retrain.policies()
        started = []
        for policy in policies:
            try:
                loop = self._start_policy(policy, at)
            except Exception:
                logger.exception("the triggers of retraining policy %s failed", policy.name)
                continue
            if loop is not None:
                started.append(loop)
        return started

    def _start_policy(self, policy: RetrainPolicy, at: int) -> RetrainLoop | None:
        with self.store.write(RETRAIN_ACTOR) as unit:
            policy = unit.retrain.policy(policy.name, lock=True)
            latest = unit.retrain.latest(policy.name)
            due = self._due(unit, policy, latest, at)
            if not due:
                return None
            ticks = [tick for *_, tick in due if tick is not None]
            if ticks:  # a tick is handled once, even when a guard holds it back
                unit.retrain.move_tick(policy.name, max(ticks))
            if latest is not None and latest.active:
                return None
            if latest is not None and latest.updated_at + policy.cooldown_seconds * 1000 > at:
                return None
            if unit.retrain.started_since(policy.name, at - policy.period_seconds * 1000) >= policy.max_loops:
                return None
            key, reason, context, _ = due[0]
            return unit.retrain.claim(policy, uuid.uuid4().hex, key, reason, context, max(at, now_ms()))

    def _due(self, unit: Any, policy: RetrainPolicy, latest: RetrainLoop | None, at: int) -> list[Due]:
        since = policy.created_at if latest is None else latest.created_at
        found: list[Due] = []
        windows = None
        for trigger in policy.triggers:
            if trigger.kind in WINDOW_TRIGGERS:
                if windows is None:
                    windows = unit.monitors.windows(policy.monitor, limit=1000)
                due = _window_due(policy, trigger, windows, since)
                if due is not None:  # lineage: the alerts the monitor holds open for this kind
                    alerts = [a.id for a in unit.monitors.alerts(policy.monitor, "open") if a.kind == trigger.kind]
                    due = (due[0], due[1], {**due[2], "alerts": alerts}, due[3])
            elif trigger.kind == "schedule":
                due = _schedule_due(policy, trigger, at)
            else:
                due = _dataset_due(unit, policy, trigger, since)
            if due is not None:
                found.append(due)
        return found

    # -- moving a loop -----------------------------------------------------------------------------

    def advance(self, loop: RetrainLoop, at: int) -> None:
        """Move `loop` on from its state (no-op while it waits: training elsewhere, approval, a canary)."""
        with self.store.read() as unit:
            try:
                policy = unit.retrain.policy(loop.policy)
            except NotFound:
                policy = None
        if policy is None:
            self._move(loop, "failed", {"reason": "the policy was deleted"}, error="the policy was deleted")
            return
        step: dict[str, Callable[[RetrainLoop, RetrainPolicy, int], None]] = {
            "triggered": self._start_training,
            "training": self._check_training,
            "registered": self._evaluate,
            "evaluating": self._evaluate,
            "gated": self._after_gate,
            "rolling_out": self._roll_out,
        }
        action = step.get(loop.state)
        if action is not None:
            action(loop, policy, at)

    def _move(
        self, loop: RetrainLoop, state: str, detail: dict[str, Any] | None = None, **fields: Any
    ) -> RetrainLoop | None:
        with self.store.write(RETRAIN_ACTOR) as unit:
            moved = unit.retrain.transition(loop, state, detail, **fields)
        if moved is not None:
            logger.info("retraining loop %s (%s): %s -> %s", loop.id, loop.policy, loop.state, state)
        return moved

    def _fail(self, loop: RetrainLoop, why: str) -> None:
        self._move(loop, "failed", {"reason": why}, error=why)

    # training

    def _start_training(self, loop: RetrainLoop, policy: RetrainPolicy, at: int) -> None:
        moved = self._move(loop, "training", {"pipeline": policy.pipeline}, holder=self.holder, heartbeat_at=at)
        if moved is None:
            return
        thread = threading.Thread(
            target=self._train, args=(moved, policy), name=f"loopml-retrain-{loop.id[:8]}", daemon=True
        )
        with self._lock:
            self._training[loop.id] = thread
        thread.start()

    def _train(self, loop: RetrainLoop, policy: RetrainPolicy) -> None:
        try:
            run_id = self._run_pipeline(loop, policy)
            self._registered(loop, policy, run_id)
        except Exception as error:
            logger.exception("retraining loop %s: the pipeline could not run", loop.id)
            try:
                current = self._current(loop)
                if current is not None and current.state == "training":
                    self._fail(current, f"the pipeline could not run: {type(error).__name__}: {error}")
            except Exception:
                logger.exception("could not record the failure of retraining loop %s", loop.id)
        finally:
            with self._lock:
                self._training.pop(loop.id, None)

    def _run_pipeline(self, loop: RetrainLoop, policy: RetrainPolicy) -> str:
        from loopml.pipelines import load_pipeline, run_pipeline

        pipeline = load_pipeline(policy.pipeline)
        principal = Principal(actor=f"retrain:{policy.name}", role=Role.EDITOR, project=policy.project)
        trigger = {"kind": "retrain", "loop": loop.id, "policy": policy.name, "reason": loop.reason, **loop.context}
        params = dict(policy.params)
        if "trigger" in pipeline.signature.parameters:
            params["trigger"] = trigger
        told: list[str] = []

        def on_change(record: Any, _steps: Any) -> None:
            if not told:
                told.append(record.run_id)
                current = self._current(loop)
                if current is not None and current.state == "training":
                    self._move(current, "training", {"pipeline_run": record.run_id}, pipeline_run_id=record.run_id)

        record = run_pipeline(
            self.pipelines,
            principal,
            pipeline,
            params,
            self.executor,
            trigger=trigger,
            project=policy.project,
            tags={"loopml.retraining.loop": loop.id},
            on_change=on_change,
        )
        if not told:
            current = self._current(loop)
            if current is not None and current.state == "training":
                self._move(current, "training", {"pipeline_run": record.run_id}, pipeline_run_id=record.run_id)
        if record.status != RunStatus.FINISHED.value and str(record.status) != "FINISHED":
            errors = [f"{s.step}: {s.error}" for s in record.steps if getattr(s, "error", None)]
            raise _PipelineFailed(
                f"pipeline run {record.run_id} {record.status}: " + ("; ".join(errors) or "see its steps")
            )
        return str(record.run_id)

    def _current(self, loop: RetrainLoop) -> RetrainLoop | None:
        with self.store.read() as unit:
            try:
                return unit.retrain.loop(loop.id)
            except NotFound:
                return None

    def _registered(self, loop: RetrainLoop, policy: RetrainPolicy, run_id: str) -> None:
        current = self._current(loop)
        if current is None or current.state != "training":
            return
        version = self._register(policy, run_id)
        self._move(
            current, "registered", {"version": version, "model": policy.model, "pipeline_run": run_id},
            version=version, pipeline_run_id=run_id,
        )  # fmt: skip

    def _register(self, policy: RetrainPolicy, run_id: str) -> int:
        """The challenger's version number: the one already registered from the run's model step, else a new
        version of the policy's model."""
        record = self.pipelines.get_run(self.principal, run_id)
        candidates = [
            (step, output)
            for step in record.steps
            if step.state.value == "finished"
            for output in step.outputs
            if output.get("serializer") == "loopml-model"
        ]
        if not candidates:
            raise _PipelineFailed(
                f"pipeline run {run_id} finished without a model: a step must return lm.Model(...) for the loop "
                "to register"
            )
        named = [c for c in candidates if c[1].get("meta", {}).get("register") == policy.model]
        step, output = (named or candidates)[-1]
        existing = self.registry.search_versions(
            self.principal, filter=f"attributes.run_id = '{step.run_id}'", name=policy.model
        )
        if existing.items:
            return int(existing.items[0].version)
        principal = Principal(actor=f"retrain:{policy.name}", role=Role.EDITOR, project=policy.project)
        target = self.pipelines.register_model(principal, step, output, policy.model)
        return int(target.rsplit("/", 1)[1])

    def _check_training(self, loop: RetrainLoop, policy: RetrainPolicy, at: int) -> None:
        with self._lock:
            alive = loop.id in self._training and self._training[loop.id].is_alive()
        if alive:
            return
        stale = loop.heartbeat_at is None or at - loop.heartbeat_at > self.stale_seconds * 1000
        if loop.holder == self.holder and not stale:
            return  # the thread is recording its end right now
        if loop.holder != self.holder and not stale and not _holder_gone(loop.holder):
            return
        # the server that trained stopped: resume if its pipeline finished, else fail cleanly
        run = None
        if loop.pipeline_run_id is not None:
            try:
                run = self.pipelines.get_run(self.principal, loop.pipeline_run_id)
            except NotFound:
                run = None
        if run is not None and str(run.status) in ("FINISHED", str(RunStatus.FINISHED)):
            try:
                self._registered(loop, policy, run.run_id)
            except Exception as error:
                self._fail(loop, f"registering the model of pipeline run {run.run_id} failed: {error}")
            return
        if run is not None and str(run.status) in ("RUNNING", str(RunStatus.RUNNING)):
            with self.store.write(RETRAIN_ACTOR) as unit:
                unit.runs.set_status(run.run_id, RunStatus.FAILED, at)
                unit.audit.record(
                    "pipeline_run.fail_orphaned", "run", run.run_id,
                    after={"reason": "its server stopped during a retraining loop", "loop": loop.id},
                )  # fmt: skip
        self._fail(
            loop,
            f"the server training this loop ({loop.holder}) stopped before the pipeline finished; the champion "
            "keeps serving and the next trigger after the cooldown starts a new loop",
        )

    # evaluation and gate

    def _evaluate(self, loop: RetrainLoop, policy: RetrainPolicy, at: int) -> None:  # noqa: ARG002 - a step's shape
        if loop.state == "registered":
            moved = self._move(loop, "evaluating", {"challenger": f"{policy.model}/{loop.version}"})
            if moved is None:
                return
            loop = moved
        try:
            gate = self._gate(policy, loop)
        except LoopmlError as error:
            why = f"the challenger could not be evaluated and gated: {error}"
            self._move(loop, "failed", {"reason": why}, error=why)
            return
        if not gate["passed"]:
            self._move(loop, "failed", {"gate": gate, "reason": gate["reason"]}, gate=gate, error=gate["reason"])
            return
        self._move(loop, "gated", {"gate": gate}, gate=gate)

    def _gate(self, policy: RetrainPolicy, loop: RetrainLoop) -> dict[str, Any]:
        """The gate's verdict as the loop records it (the result itself is stored on the version)."""
        assert loop.version is not None
        assert loop.pipeline_run_id is not None
        if policy.gate is None:
            return {"passed": True, "reason": "no gate policy: passed without checks", "checks": []}
        from loopml.retraining.evaluation import LoopGate

        principal = Principal(actor=f"retrain:{policy.name}", role=Role.EDITOR, project=policy.project)
        result = LoopGate(self.store, self.registry, self.pipelines).check(
            principal, policy.model, loop.version, policy.gate, loop.pipeline_run_id, policy.label
        )
        checks = [
            {"check": c.name, "status": c.status, "observed": c.observed, "threshold": c.threshold, "detail": c.detail}
            for c in result.checks
        ]
        failed = [c for c in checks if c["status"] != "pass"]
        reason = (
            f"gate passed: {len(checks)} check(s)"
            if result.passed
            else "gate failed: " + "; ".join(f"{c['check']} ({c['detail'] or c['status']})" for c in failed)
        )
        return {"passed": result.passed, "reason": reason, "checks": checks, "result_id": result.id,
                "evaluation_id": result.evaluation_id}  # fmt: skip

    def _after_gate(self, loop: RetrainLoop, policy: RetrainPolicy, at: int) -> None:  # noqa: ARG002 - a step's shape
        if policy.approval == "manual":
            self._move(
                loop, "awaiting_approval", {"approval": "a person approves with `loopml retrain approve LOOP_ID`"}
            )
        else:
            self._move(loop, "rolling_out", {"approval": "automatic"})

    # rollout

    def _deployment_name(self, policy: RetrainPolicy) -> str:
        with self.store.read() as unit:
            return str(unit.monitors.get(policy.monitor).deployment)

    def _roll_out(self, loop: RetrainLoop, policy: RetrainPolicy, at: int) -> None:  # noqa: ARG002 - a step's shape
        assert loop.version is not None
        ours = (policy.model, loop.version)
        name = self._deployment_name(policy)
        if loop.rollout is None:
            current = self.deploy.status(self.principal, name)
            if any((v.model, v.version) == ours for v in current.versions):
                deployed, how = current, "adopted"  # deployed before the server stopped; never deployed twice
            else:
                try:
                    deployed = self.deploy.deploy(
                        self.principal, name, f"{policy.model}/{loop.version}",
                        strategy=policy.rollout, canary_steps=policy.canary_steps,
                        analysis_seconds=policy.analysis_seconds, thresholds=current.thresholds,
                        reason=f"retraining loop {loop.id} ({policy.name}): {loop.reason}"[:2000],
                    )  # fmt: skip
                except LoopmlError as error:
                    self._fail(loop, f"the rollout could not start: {error}")
                    return
                how = "deployed"
            rollout = {"deployment": name, "revision": deployed.revision, "strategy": policy.rollout, "how": how}
            moved = self._move(loop, "rolling_out", {"rollout": rollout}, rollout=rollout)
            if moved is None:
                return
            loop = moved
        current = self.deploy.status(self.principal, name)
        mine = next((v for v in current.versions if (v.model, v.version) == ours), None)
        stable = current.stable
        if stable is not None and (stable.model, stable.version) == ours and stable.weight == 100:
            self._succeed(loop, policy, current)
        elif mine is None or (current.state == "rolled_back" and mine.weight == 0):
            last = self.deploy.decisions(self.principal, name, limit=1)
            why = last[-1].reason if last else "the deployment no longer serves the challenger"
            self._fail(loop, f"the rollout of {policy.model}/{loop.version} was rolled back: {why}")

    def _succeed(self, loop: RetrainLoop, policy: RetrainPolicy, deployment: Any) -> None:
        assert loop.version is not None
        try:
            champion = self.registry.get_alias(self.principal, policy.model, CHAMPION).version
        except NotFound:
            champion = None
        detail: dict[str, Any] = {"champion": f"{policy.model}/{loop.version}", "deployment": deployment.name}
        if champion != loop.version:
            try:
                self.registry.set_alias(
                    self.principal, policy.model, CHAMPION, loop.version, reason=f"retraining loop {loop.id} succeeded"
                )
            except LoopmlError as error:  # e.g. the alias requires a passed gate and the policy has none
                detail["champion"] = f"not moved ({error}); {policy.model}/{loop.version} serves 100%"
        self._move(loop, "succeeded", {**detail, "revision": deployment.revision})

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for the training threads of this replica; True if none is left."""
        with self._lock:
            threads = list(self._training.values())
        for thread in threads:
            thread.join(timeout)
        with self._lock:
            return not self._training


class _PipelineFailed(LoopmlError):
    code = "pipeline_failed"


# -- what is due ----------------------------------------------------------------------------------------


def _breached(trigger: RetrainTrigger, window: Any) -> bool:
    if trigger.kind == "metric_drop" and trigger.threshold is not None:
        drops = (window.performance or {}).get("drops") or {}
        values = [float(v) for v in drops.values() if isinstance(v, int | float) and not isinstance(v, bool)]
        return bool(values) and max(values) >= trigger.threshold
    return window.breaches.get(trigger.kind) is True


def _window_due(policy: RetrainPolicy, trigger: RetrainTrigger, windows: list[Any], since: int) -> Due | None:
    if len(windows) < trigger.windows:
        return None
    streak = windows[-trigger.windows :]
    if not all(_breached(trigger, w) for w in streak):
        return None
    latest = streak[-1]
    if latest.updated_at <= since:  # judged before the last loop started: that loop answered it
        return None
    run = 0
    for window in reversed(windows):
        if not _breached(trigger, window):
            break
        run += 1
    reason = (
        f"{trigger.label}: {run} consecutive breaching {trigger.kind.replace('_', ' ')} window(s) of monitor "
        f"{policy.monitor!r}"
    )
    context = {
        "trigger": trigger.kind,
        "monitor": policy.monitor,
        "windows": run,
        "data_start_ms": windows[-run].start_time,
        "data_end_ms": latest.end_time,
    }
    return f"{trigger.kind}:{latest.start_time}", reason, context, None


def _schedule_due(policy: RetrainPolicy, trigger: RetrainTrigger, at: int) -> Due | None:
    assert trigger.cron is not None
    after = policy.last_tick if policy.last_tick is not None else policy.created_at
    tick = latest_tick(trigger.cron, after, at)
    if tick is None:
        return None
    context = {"trigger": "schedule", "cron": trigger.cron, "tick": tick, "data_start_ms": after, "data_end_ms": tick}
    return f"schedule:{tick}", f"schedule {trigger.cron!r}", context, tick


def _dataset_due(unit: Any, policy: RetrainPolicy, trigger: RetrainTrigger, since: int) -> Due | None:
    assert trigger.dataset is not None
    versions = unit.schedules.dataset_versions(trigger.dataset, max(since, policy.created_at) + 1)
    if not versions:
        return None
    digest, logged = versions[-1]
    context = {
        "trigger": "dataset",
        "dataset": trigger.dataset,
        "digest": digest,
        "data_start_ms": since,
        "data_end_ms": logged,
    }
    return f"dataset:{digest}", f"a new version of dataset {trigger.dataset!r} ({digest[:12]})", context, None
