"""Retraining loops moved by the controller, in-process: triggers, guards, the states, failures."""

from __future__ import annotations

import pytest

from loopml.store import read_events

from .conftest import ADMIN, World


def test_a_storm_of_breaching_windows_runs_one_loop_to_a_new_champion(world: World) -> None:
    world.retrain.create_policy(ADMIN, "toy", "toy-mon", world.pipeline_ref, ["drift:3"], rollout="direct")
    world.breach(count=50)
    controller = world.controller()
    assert world.drive(controller, {"succeeded", "failed"}) == "succeeded"
    loops = world.retrain.list_loops(ADMIN, "toy")
    assert len(loops) == 1  # fifty breaching windows, one loop
    loop = loops[0]
    assert [e.state for e in loop.events if e.state != "training" or e.detail.get("pipeline")] == [
        "triggered", "training", "registered", "evaluating", "gated", "rolling_out", "rolling_out", "succeeded",
    ]  # fmt: skip
    assert loop.version == 2 and loop.pipeline_run_id is not None
    assert "50 consecutive breaching drift window(s)" in loop.reason
    assert world.registry.get_alias(ADMIN, "toy", "champion").version == 2
    stable = world.deploy.status(ADMIN, "toy-dep").stable
    assert stable is not None and (stable.model, stable.version) == ("toy", 2)
    run = world.pipelines.get_run(ADMIN, loop.pipeline_run_id)
    assert run.trigger["loop"] == loop.id and run.trigger["windows"] == 50  # the pipeline got the trigger
    with world.store.read() as unit:
        actions = [e.action for e in read_events(unit.connection) if e.entity_id == loop.id]
    assert actions[0] == "retrain_loop.triggered" and actions[-1] == "retrain_loop.succeeded"
    # the same windows do not start another loop, and the versions were registered once
    assert world.drive(world.controller(), {"triggered"}, passes=3) == "succeeded"
    assert [v.version for v in world.registry.search_versions(ADMIN, name="toy").items] == [2, 1]


def test_a_failing_pipeline_leaves_the_champion_and_respects_the_cooldown(world: World) -> None:
    world.retrain.create_policy(
        ADMIN, "toy", "toy-mon", world.pipeline_ref, ["drift:2"], rollout="direct", params={"fail": True}
    )
    world.breach(count=2)
    controller = world.controller()
    assert world.drive(controller, {"succeeded", "failed"}) == "failed"
    loop = world.retrain.list_loops(ADMIN, "toy")[0]
    assert loop.error is not None and "no fresh labels in the window" in loop.error
    assert world.registry.get_alias(ADMIN, "toy", "champion").version == 1
    world.breach(count=2, start=2)  # new breaching windows inside the cooldown (1 day): no new loop
    controller.tick()
    assert len(world.retrain.list_loops(ADMIN, "toy")) == 1


GATE = "metrics:\n  - rmse <= champion * 1.02\n  - rmse <= 5\n"


def test_the_gate_scores_challenger_and_champion_on_the_same_fresh_rows(world: World) -> None:
    world.retrain.create_policy(
        ADMIN, "toy", "toy-mon", world.pipeline_ref, ["drift:1"], rollout="direct", gate=GATE, label="rentals",
        params={"slope": 3.0},
    )  # fmt: skip
    world.breach(count=1)
    assert world.drive(world.controller(), {"succeeded", "failed"}) == "succeeded"
    loop = world.retrain.list_loops(ADMIN, "toy")[0]
    assert loop.gate is not None and loop.gate["passed"] is True
    observed = {c["check"]: c for c in loop.gate["checks"]}
    relative = observed["rmse <= champion * 1.02"]
    assert relative["observed"] < 1e-6 < relative["threshold"]  # the old slope is far off on the drifted rows


def test_a_failing_gate_records_why_and_the_champion_keeps_serving(world: World) -> None:
    world.retrain.create_policy(
        ADMIN, "toy", "toy-mon", world.pipeline_ref, ["drift:1"], rollout="direct", gate=GATE, label="rentals",
        params={"bias": 50.0},
    )  # fmt: skip
    world.breach(count=1)
    assert world.drive(world.controller(), {"succeeded", "failed"}) == "failed"
    loop = world.retrain.list_loops(ADMIN, "toy")[0]
    assert loop.version == 2 and loop.gate is not None and loop.gate["passed"] is False
    assert (loop.error or "").startswith("gate failed: rmse <= champion * 1.02")
    stable = world.deploy.status(ADMIN, "toy-dep").stable
    assert stable is not None and stable.version == 1
    assert world.registry.get_alias(ADMIN, "toy", "champion").version == 1


def test_manual_approval_waits_then_reject_ends_the_loop(world: World) -> None:
    world.retrain.create_policy(
        ADMIN, "toy", "toy-mon", world.pipeline_ref, ["drift:1"], rollout="direct", approval="manual"
    )
    world.breach(count=1)
    controller = world.controller()
    assert world.drive(controller, {"awaiting_approval", "failed"}) == "awaiting_approval"
    loop = world.retrain.list_loops(ADMIN, "toy")[0]
    controller.tick()
    assert world.retrain.get_loop(ADMIN, loop.id).state == "awaiting_approval"  # nothing moves without a person
    rejected = world.retrain.reject(ADMIN, loop.id, "not on a Friday")
    assert rejected.state == "rejected" and rejected.error == "rejected by ann: not on a Friday"
    with pytest.raises(ValueError, match="only a loop waiting for approval"):
        world.retrain.approve(ADMIN, loop.id)


def test_manual_approval_then_approve_rolls_out(world: World) -> None:
    world.retrain.create_policy(
        ADMIN, "toy", "toy-mon", world.pipeline_ref, ["drift:1"], rollout="direct", approval="manual"
    )
    world.breach(count=1)
    controller = world.controller()
    assert world.drive(controller, {"awaiting_approval"}) == "awaiting_approval"
    loop = world.retrain.list_loops(ADMIN, "toy")[0]
    world.retrain.approve(ADMIN, loop.id)
    assert world.drive(controller, {"succeeded", "failed"}) == "succeeded"
    assert world.registry.get_alias(ADMIN, "toy", "champion").version == 2
