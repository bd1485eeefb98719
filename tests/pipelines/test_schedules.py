"""Schedules through the service: creation checks, roles and projects, and the event trigger point."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loopml.domain import Principal, Role
from loopml.errors import AlreadyExists, InvalidInput, PermissionDenied, ScheduleNotFound
from loopml.pipelines.schedules import ScheduleService
from loopml.store import MetadataStore

EDITOR = Principal("ann", Role.EDITOR, None)
VIEWER = Principal("vic", Role.VIEWER, None)
OTHER = Principal("olga", Role.EDITOR, "other")
REF = "examples/bike/pipeline.py:nightly"


@pytest.fixture
def service(db_url: str) -> Iterator[ScheduleService]:
    store = MetadataStore.open(db_url)
    try:
        yield ScheduleService(store)
    finally:
        store.close()


def test_create_list_get_delete(service: ScheduleService) -> None:
    made = service.create_schedule(EDITOR, "nightly", REF, cron="0 2 * * *", params={"start": "2012-01-01"})
    assert (made.project, made.cron, made.executor) == ("default", "0 2 * * *", "process")
    assert made.params == {"start": "2012-01-01"}
    assert made.last_tick == made.created_at  # ticks before the schedule existed never run
    assert [s.name for s in service.schedules(VIEWER)] == ["nightly"]
    assert service.get_schedule(VIEWER, "nightly") == made
    with pytest.raises(AlreadyExists, match="unschedule it first"):
        service.create_schedule(EDITOR, "nightly", REF, cron="0 3 * * *")
    service.delete_schedule(EDITOR, "nightly")
    with pytest.raises(ScheduleNotFound):
        service.get_schedule(EDITOR, "nightly")
    with pytest.raises(ScheduleNotFound):
        service.delete_schedule(EDITOR, "nightly")


def test_every_change_is_audited(service: ScheduleService) -> None:
    service.create_schedule(EDITOR, "nightly", REF, cron="0 2 * * *")
    service.fire(EDITOR, "nightly", "alert:7", "drift on bike-demand")
    service.delete_schedule(EDITOR, "nightly")
    with service.store.read() as unit:
        from loopml.store import read_events

        actions = [e.action for e in read_events(unit.connection)]
    assert actions[-3:] == ["pipeline_schedule.create", "pipeline_schedule.fire", "pipeline_schedule.delete"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "every night"}, "invalid cron expression"),
        ({"cron": "0 2 * * *", "pipeline": "nightly"}, "not `module:function`"),
        ({"cron": "0 2 * * *", "pipeline": "mod:not-a-name"}, "not `module:function`"),
        ({}, "needs a trigger"),
        ({"cron": "0 2 * * *", "executor": "kubernetes"}, "unknown executor 'kubernetes'"),
        ({"cron": "0 2 * * *", "params": {"when": object()}}, "must be JSON values"),
        ({"cron": "0 2 * * *", "params": {"not a name": 1}}, "parameter names"),
        ({"cron": "0 2 * * *", "name": "../etc"}, "schedule name"),
    ],
)
def test_bad_input_names_the_cause(service: ScheduleService, kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"name": "nightly", "pipeline": REF, **kwargs}
    with pytest.raises(InvalidInput, match=message):
        service.create_schedule(EDITOR, **arguments)  # type: ignore[arg-type]
    assert service.schedules(EDITOR) == []


def test_a_viewer_reads_but_cannot_schedule(service: ScheduleService) -> None:
    with pytest.raises(PermissionDenied, match="editor"):
        service.create_schedule(VIEWER, "nightly", REF, cron="0 2 * * *")
    service.create_schedule(EDITOR, "nightly", REF, cron="0 2 * * *")
    with pytest.raises(PermissionDenied):
        service.delete_schedule(VIEWER, "nightly")
    with pytest.raises(PermissionDenied):
        service.fire(VIEWER, "nightly", "alert:1", "drift")
    assert service.firings(VIEWER, "nightly") == []


def test_another_project_neither_sees_nor_touches_a_schedule(service: ScheduleService) -> None:
    service.create_schedule(EDITOR, "nightly", REF, cron="0 2 * * *")
    assert service.schedules(OTHER) == []
    for call in (
        lambda: service.get_schedule(OTHER, "nightly"),
        lambda: service.delete_schedule(OTHER, "nightly"),
        lambda: service.fire(OTHER, "nightly", "alert:1", "drift"),
        lambda: service.firings(OTHER, "nightly"),
    ):
        with pytest.raises(ScheduleNotFound):
            call()
    with pytest.raises(PermissionDenied, match="scoped to project 'other'"):
        service.create_schedule(OTHER, "theirs", REF, cron="0 2 * * *", project="default")
    assert service.create_schedule(OTHER, "theirs", REF, cron="0 2 * * *").project == "other"


def test_an_event_fires_once_per_key(service: ScheduleService) -> None:
    service.create_schedule(EDITOR, "retrain", REF, dataset="bike-hourly")
    first = service.fire(EDITOR, "retrain", "alert:42", "drift on bike-demand", {"alert": 42})
    assert first is not None and (first.state, first.holder, first.context) == ("pending", None, {"alert": 42})
    assert service.fire(EDITOR, "retrain", "alert:42", "delivered again") is None
    assert [f.key for f in service.firings(EDITOR, "retrain")] == ["alert:42"]
    for key in ("cron:1", "dataset:abc", "no-kind", "", "x:" + "y" * 600):
        with pytest.raises(InvalidInput):
            service.fire(EDITOR, "retrain", key, "forged")
