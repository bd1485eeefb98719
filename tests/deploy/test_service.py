"""The deploy service: strategies, instant rollback, promotion, history, authorisation and audit."""

from __future__ import annotations

import pytest

from loopml.deploy import DeployService
from loopml.errors import DeploymentNotFound, InvalidInput, InvalidName, ModelNotFound, PermissionDenied
from loopml.store import read_events

from .conftest import EDITOR, OTHER, VIEWER, World


def serving(d: object) -> list[tuple[str, int, str]]:
    return [(f"{v.model}/{v.version}", v.weight, v.role) for v in d.versions]  # type: ignore[attr-defined]


def test_direct_deploy_stores_the_resolved_version_not_the_alias(world: World) -> None:
    first = world.deploy.deploy(EDITOR, "bike-demand", "bike@champion")
    assert (first.revision, first.strategy, first.state, first.project) == (1, "direct", "stable", "default")
    assert serving(first) == [("bike/1", 100, "stable")]
    world.registry.set_alias(EDITOR, "bike", "champion", 3)
    assert serving(world.deploy.status(VIEWER, "bike-demand")) == [("bike/1", 100, "stable")]


def test_direct_deploy_then_rollback_restores_the_previous_version_at_once(world: World) -> None:
    world.deploy.deploy(EDITOR, "bike-demand", "bike/1")
    world.deploy.deploy(EDITOR, "bike-demand", "bike/2")
    rolled = world.deploy.rollback(EDITOR, "bike-demand", reason="bad numbers")
    assert (rolled.revision, rolled.state) == (3, "rolled_back")
    assert serving(rolled) == [("bike/1", 100, "stable")]
    history = world.deploy.history(VIEWER, "bike-demand")
    assert [(h.revision, h.reason, h.actor) for h in history] == [
        (3, "bad numbers", "ed"),
        (2, "deploy bike/2", "ed"),
        (1, "deploy bike/1", "ed"),
    ]
    with world.store.read() as unit:
        events = [e for e in read_events(unit.connection) if e.entity_type == "deployment"]
    assert [e.action for e in events] == ["deployment.create", "deployment.update", "deployment.update"]
    assert events[-1].before is not None and events[-1].after is not None
    assert events[-1].before["versions"] == [{"model": "bike", "version": 2, "weight": 100, "role": "stable"}]
    assert events[-1].after["versions"] == [{"model": "bike", "version": 1, "weight": 100, "role": "stable"}]
    assert events[-1].after["reason"] == "bad numbers"


def test_a_lone_first_version_has_nothing_to_roll_back_to(world: World) -> None:
    world.deploy.deploy(EDITOR, "bike-demand", "bike/1")
    with pytest.raises(InvalidInput, match="no earlier version"):
        world.deploy.rollback(EDITOR, "bike-demand")


def test_canary_starts_at_the_first_step_and_rolls_back_to_the_stable_version(world: World) -> None:
    world.deploy.deploy(EDITOR, "bike-demand", "bike@champion")
    canary = world.deploy.deploy(
        EDITOR, "bike-demand", "bike@challenger", strategy="canary", canary_steps=(10, 50, 100), analysis_seconds=60
    )
    assert (canary.state, canary.canary_steps, canary.step_index, canary.analysis_seconds) == (
        "progressing",
        (10, 50, 100),
        0,
        60,
    )
    assert serving(canary) == [("bike/1", 90, "stable"), ("bike/2", 10, "canary")]
    assert canary.thresholds["max_error_rate_increase"] == 0.05
    rolled = world.deploy.rollback(EDITOR, "bike-demand")
    assert rolled.state == "rolled_back"
    assert serving(rolled) == [("bike/1", 100, "stable"), ("bike/2", 0, "canary")]


def test_shadow_and_ab_keep_the_stable_version_and_promote_makes_the_candidate_stable(world: World) -> None:
    world.deploy.deploy(EDITOR, "bike-demand", "bike/1")
    shadow = world.deploy.deploy(EDITOR, "bike-demand", "bike/2", strategy="shadow")
    assert serving(shadow) == [("bike/1", 100, "stable"), ("bike/2", 0, "shadow")]
    promoted = world.deploy.promote(EDITOR, "bike-demand")
    assert (promoted.state, serving(promoted)) == ("promoted", [("bike/2", 100, "stable")])
    ab = world.deploy.deploy(EDITOR, "bike-demand", "bike/3", strategy="ab", ab_weight=30, sticky_key="user")
    assert serving(ab) == [("bike/2", 70, "stable"), ("bike/3", 30, "canary")]
    assert ab.sticky_key == "user"
    assert serving(world.deploy.promote(EDITOR, "bike-demand")) == [("bike/3", 100, "stable")]
    with pytest.raises(InvalidInput, match="no candidate"):
        world.deploy.promote(EDITOR, "bike-demand")


def test_bad_requests_are_refused_with_what_to_fix(world: World) -> None:
    deploy = world.deploy
    with pytest.raises(InvalidInput, match="needs a stable version"):
        deploy.deploy(EDITOR, "new", "bike/2", strategy="canary")
    deploy.deploy(EDITOR, "d", "bike/1")
    cases = [
        ({"strategy": "blue"}, "strategy must be one of"),
        ({"strategy": "canary", "canary_steps": (50, 10)}, "must increase"),
        ({"strategy": "canary", "canary_steps": (0, 100)}, "percentages"),
        ({"analysis_seconds": 0}, "analysis_seconds"),
        ({"thresholds": {"p99": 3}}, "unknown threshold"),
        ({"ab_weight": 30}, "ab strategy only"),
        ({"strategy": "ab", "ab_weight": 100}, "ab_weight"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InvalidInput, match=message):
            deploy.deploy(EDITOR, "d", "bike/2", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="already the stable version"):
        deploy.deploy(EDITOR, "d", "bike/1", strategy="canary")
    with pytest.raises(InvalidName):
        deploy.deploy(EDITOR, "a/b", "bike/1")
    with pytest.raises(ModelNotFound):
        deploy.deploy(EDITOR, "d", "nope/1")
    with pytest.raises(DeploymentNotFound):
        deploy.status(VIEWER, "missing")


def test_viewers_read_editors_change_and_other_projects_see_nothing(world: World) -> None:
    world.deploy.deploy(EDITOR, "bike-demand", "bike/1")
    with pytest.raises(PermissionDenied):
        world.deploy.deploy(VIEWER, "bike-demand", "bike/2")
    with pytest.raises(PermissionDenied):
        world.deploy.rollback(VIEWER, "bike-demand")
    with pytest.raises(DeploymentNotFound):
        world.deploy.status(OTHER, "bike-demand")
    with pytest.raises(DeploymentNotFound):
        world.deploy.rollback(OTHER, "bike-demand")
    assert world.deploy.list(OTHER) == []
    assert [d.name for d in world.deploy.list(VIEWER)] == ["bike-demand"]


def test_a_service_without_a_request_log_still_deploys(world: World) -> None:
    service = DeployService(world.store, world.registry)
    assert service.deploy(EDITOR, "x", "bike/1").revision == 1


def test_rolling_back_a_shadow_stops_the_copies(world: World) -> None:
    world.deploy.deploy(EDITOR, "bike-demand", "bike/1")
    world.deploy.deploy(EDITOR, "bike-demand", "bike/2", strategy="shadow")
    rolled = world.deploy.rollback(EDITOR, "bike-demand")
    assert (rolled.state, serving(rolled)) == ("rolled_back", [("bike/1", 100, "stable")])


def alias_events(world: World) -> list[tuple[str, object, object]]:
    with world.store.read() as unit:
        return [(e.actor, e.before, e.after) for e in read_events(unit.connection) if e.action == "model.set_alias"]


def test_promoting_a_canary_moves_the_alias_the_deployment_follows(world: World) -> None:
    followed = world.deploy.deploy(EDITOR, "bike-demand", "models:/bike@champion")
    assert followed.follows_alias == "champion"
    canary = world.deploy.deploy(EDITOR, "bike-demand", "models:/bike/2", strategy="canary")
    assert canary.follows_alias == "champion"
    before = len(alias_events(world))
    promoted = world.deploy.promote(EDITOR, "bike-demand")
    assert serving(promoted) == [("bike/2", 100, "stable")]
    assert world.registry.resolve(VIEWER, "bike@champion").version == 2
    assert "alias bike@champion moved from 1 to 2" in world.deploy.history(VIEWER, "bike-demand")[0].reason
    [(actor, was, now)] = alias_events(world)[before:]
    assert actor == "ed"
    assert was == {"alias": "champion", "version": 1}
    assert now == {"alias": "champion", "version": 2, "reason": "promotion of bike/2 in deployment 'bike-demand'"}
    assert world.deploy.status(VIEWER, "bike-demand").follows_alias == "champion"  # and the next promotion too


def test_an_alias_is_left_alone_when_nothing_follows_it_or_someone_moved_it(world: World) -> None:
    world.deploy.deploy(EDITOR, "bike-demand", "bike/1")  # a version, not an alias: nothing followed
    world.deploy.deploy(EDITOR, "bike-demand", "bike@challenger", strategy="canary")
    world.deploy.promote(EDITOR, "bike-demand")
    assert world.registry.resolve(VIEWER, "bike@champion").version == 1

    world.deploy.deploy(EDITOR, "other", "bike@champion")
    world.deploy.deploy(EDITOR, "other", "bike/3", strategy="canary")
    world.registry.set_alias(EDITOR, "bike", "champion", 2, reason="moved by hand meanwhile")
    promoted = world.deploy.promote(EDITOR, "other")
    assert serving(promoted) == [("bike/3", 100, "stable")]
    assert world.registry.resolve(VIEWER, "bike@champion").version == 2  # the person's decision stands
    assert "not moved: it points at version 2, not 1" in world.deploy.history(VIEWER, "other")[0].reason
