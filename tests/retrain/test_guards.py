"""Guards and crash safety of retraining loops, in-process: one loop however many ask, rollouts never started
twice, loops of a stopped server resumed or failed, never left running."""

from __future__ import annotations

import threading
import time

import pytest

from loopml.errors import InvalidInput
from loopml.store.audit import now_ms

from .conftest import ADMIN, EDITOR, VIEWER, World


def test_concurrent_controllers_start_one_loop(world: World) -> None:
    """Two servers (no lease between them here) evaluating the same storm at once: the store lets one in."""
    world.retrain.create_policy(ADMIN, "toy", "toy-mon", world.pipeline_ref, ["drift:3"], rollout="direct")
    world.breach(count=50)
    controllers = [world.controller(holder=f"server-{i}") for i in range(4)]
    barrier = threading.Barrier(len(controllers))
    started: list[int] = []

    def evaluate(index: int) -> None:
        barrier.wait()
        started.append(len(controllers[index].start_due(now_ms())))

    threads = [threading.Thread(target=evaluate, args=(i,)) for i in range(len(controllers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(started) == [0, 0, 0, 1]
    assert len(world.retrain.list_loops(ADMIN, "toy")) == 1


def test_max_loops_per_period(world: World) -> None:
    world.retrain.create_policy(
        ADMIN, "toy", "toy-mon", world.pipeline_ref, ["drift:1"], rollout="direct", cooldown=0, max_loops=1,
        period="7d", params={"fail": True},
    )  # fmt: skip
    controller = world.controller()
    world.breach(count=1)
    assert world.drive(controller, {"failed"}) == "failed"
    world.breach(count=1, start=1)  # a new breaching window, no cooldown, but the week's one loop is spent
    controller.tick()
    assert len(world.retrain.list_loops(ADMIN, "toy")) == 1


def test_a_loop_of_a_stopped_server_is_failed_and_its_run_too(world: World) -> None:
    world.retrain.create_policy(ADMIN, "toy", "toy-mon", world.pipeline_ref, ["drift:1"], rollout="direct")
    world.breach(count=1)
    dead = world.controller(holder="gone-host:1:dead")
    dead.start_due(now_ms())
    loop = world.retrain.list_loops(ADMIN, "toy")[0]
    with world.store.write("test") as unit:  # the dead server had moved it to training, then stopped
        unit.retrain.transition(loop, "training", {}, holder="gone-host:1:dead", heartbeat_at=now_ms() - 60_000)
    world.drive(world.controller(), {"failed"}, passes=3)
    ended = world.retrain.get_loop(ADMIN, loop.id)
    assert ended.state == "failed" and "stopped before the pipeline finished" in (ended.error or "")
    assert [v.version for v in world.registry.search_versions(ADMIN, name="toy").items] == [1]


def test_a_rollout_recorded_nowhere_is_adopted_not_started_twice(world: World) -> None:
    """The server deployed the challenger, then died before recording it: the next one adopts that revision."""
    world.retrain.create_policy(ADMIN, "toy", "toy-mon", world.pipeline_ref, ["drift:1"], rollout="canary")
    world.breach(count=1)
    controller = world.controller()
    assert world.drive(controller, {"rolling_out"}) == "rolling_out"
    controller.tick()  # deploys the canary
    loop = world.retrain.list_loops(ADMIN, "toy")[0]
    revisions = len(world.deploy.history(ADMIN, "toy-dep"))
    assert loop.rollout is not None and loop.rollout["how"] == "deployed"
    with world.store.write("test") as unit:  # forget the record, as a crash right after deploy() would
        unit.connection.exec_driver_sql("UPDATE retrain_loops SET rollout = NULL")
    controller.tick()
    again = world.retrain.get_loop(ADMIN, loop.id)
    assert again.rollout is not None and again.rollout["how"] == "adopted"
    assert len(world.deploy.history(ADMIN, "toy-dep")) == revisions  # no second deploy
    # a person rolls the canary back: the loop fails with the reason and the champion stays
    world.deploy.rollback(ADMIN, "toy-dep", "latency looked bad")
    controller.tick()
    ended = world.retrain.get_loop(ADMIN, loop.id)
    assert ended.state == "failed" and "was rolled back" in (ended.error or "")
    assert world.registry.get_alias(ADMIN, "toy", "champion").version == 1


def test_roles_and_refusals(world: World) -> None:
    with pytest.raises(PermissionError):
        world.retrain.create_policy(VIEWER, "toy", "toy-mon", world.pipeline_ref, ["drift:1"])
    for kwargs, message in [
        ({"monitor": "nope"}, "monitor 'nope' does not exist"),
        ({"pipeline": world.pipeline_ref.replace(":retrain", ":gone")}, "defines no 'gone'"),
        ({"pipeline": "/nowhere/p.py:retrain"}, "does not exist on the server"),
        ({"triggers": ["drift:0"]}, "1 to 1000"),
        ({"triggers": ["metric-drop:150%"]}, "between 0% and 100%"),
        ({"triggers": ["schedule:every monday"]}, "invalid cron expression"),
        ({"triggers": ["weather:rain"]}, "unknown trigger kind"),
        ({"cooldown": "soon"}, "cooldown must be a duration"),
        ({"gate": "metrics:\n  - rmse <= 'low'\n", "label": "y"}, "line 2"),
        ({"gate": "metrics: [rmse <= 3\n", "label": "y"}, "not valid YAML"),
        ({"gate": "metrics:\n  - rmse <= 110\n"}, "give `label`"),
        ({"model": "unknown-model"}, "not registered"),
    ]:
        arguments = {"monitor": "toy-mon", "pipeline": world.pipeline_ref, "triggers": ["drift:1"], **kwargs}
        with pytest.raises(InvalidInput, match=message):
            world.retrain.create_policy(EDITOR, "toy", **arguments)  # type: ignore[arg-type]
    assert world.retrain.list_policies(VIEWER) == []


def test_a_promoted_canary_ends_the_loop_with_lineage_from_the_alert(world: World) -> None:
    world.retrain.create_policy(
        ADMIN, "toy", "toy-mon", world.pipeline_ref, ["drift:1"], rollout="canary", canary_steps=[20, 100],
        analysis_seconds=60,
    )  # fmt: skip
    world.breach(count=1)
    with world.store.write("monitor-scheduler") as unit:
        alert = unit.monitors.open_alert("toy-mon", "drift", "toy-mon:drift:0", 0, {})
    controller = world.controller()
    assert world.drive(controller, {"rolling_out"}) == "rolling_out"
    controller.tick()
    status = world.deploy.status(ADMIN, "toy-dep")
    canary = status.role("canary")
    assert canary is not None and (canary.version, canary.weight, status.canary_steps) == (2, 20, (20, 100))
    world.deploy.promote(ADMIN, "toy-dep", "analysis passed")  # as the rollout controller does after its steps
    assert world.drive(controller, {"succeeded", "failed"}) == "succeeded"
    loop = world.retrain.list_loops(ADMIN, "toy")[0]
    assert loop.context["alerts"] == [alert.id]  # alert -> loop -> pipeline run -> version -> gate -> rollout
    assert loop.pipeline_run_id and loop.version == 2 and loop.gate and loop.rollout
    assert world.registry.get_alias(ADMIN, "toy", "champion").version == 2


def test_a_loop_cut_off_while_gating_is_gated_by_the_next_server(world: World) -> None:
    world.retrain.create_policy(
        ADMIN, "toy", "toy-mon", world.pipeline_ref, ["drift:1"], rollout="direct",
        gate="metrics:\n  - rmse <= champion * 1.02\n", label="rentals", params={"slope": 3.0},
    )  # fmt: skip
    world.breach(count=1)
    first = world.controller(holder="first", lease_seconds=0.2)
    assert world.drive(first, {"registered"}) == "registered"
    loop = world.retrain.list_loops(ADMIN, "toy")[0]
    with world.store.write("test") as unit:  # the first server entered evaluating, then died
        unit.retrain.transition(loop, "evaluating", {"challenger": "toy/2"})
    time.sleep(0.3)  # the dead server's lease expires
    assert world.drive(world.controller(holder="second"), {"succeeded", "failed"}) == "succeeded"
    ended = world.retrain.get_loop(ADMIN, loop.id)
    assert ended.gate is not None and ended.gate["passed"] is True
    assert [v.version for v in world.registry.search_versions(ADMIN, name="toy").items] == [2, 1]


def test_metric_drop_fires_on_the_realised_drop_not_below_it(world: World) -> None:
    from loopml.domain.monitoring import MonitorWindow

    world.retrain.create_policy(
        ADMIN, "toy", "toy-mon", world.pipeline_ref, ["metric-drop:10%"], rollout="direct", params={"fail": True}
    )
    controller = world.controller()

    def window(start: int, drop: float) -> None:
        at = now_ms()
        performance = {"metrics": {"rmse": 5.0}, "drops": {"rmse": drop}}
        with world.store.write("monitor-scheduler") as unit:
            unit.monitors.put_window(
                MonitorWindow("toy-mon", start, start + 1, 10, 10, "toy", 1, {}, performance, {}, at, at)
            )

    window(0, 0.05)
    controller.tick()
    assert world.retrain.list_loops(ADMIN, "toy") == []  # 5% is under the policy's 10%
    window(10, 0.12)
    controller.tick()
    controller.wait_idle(60)  # the loop's training thread started in the same pass
    loop = world.retrain.list_loops(ADMIN, "toy")[0]
    assert loop.trigger_key == "metric_drop:10" and loop.reason.startswith("metric-drop:10%: 1 consecutive")
