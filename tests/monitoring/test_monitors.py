"""Monitors over the request log: windows by time and by count, hysteresis, late labels, webhooks, the report."""

from __future__ import annotations

import itertools
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from loopml.data import build_profile
from loopml.domain.monitoring import window_to_json
from loopml.errors import AlreadyExists, InvalidInput, MonitorNotFound, NotFound, PermissionDenied
from loopml.monitoring import MonitoringService, StoreSegmentPublisher, read_backfill_labels, read_backfill_requests
from loopml.monitoring.gauges import exposition
from loopml.monitoring.performance import classification_metrics, regression_metrics
from loopml.monitoring.windows import parse_duration, parse_window
from loopml.serving.request_log import RequestLog
from loopml.serving.segments import SegmentMeta, segment_meta
from loopml.store import read_events

from .support import ADMIN, DAY, EDITOR, T0, VIEWER, World, record, webhook_server


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    made = World(db_url, tmp_path)
    yield made
    made.close()


def training(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    return pd.DataFrame({"x": x, "city": rng.choice(["a", "b", "c"], n), "prediction": (x > 0).astype(int)})


def day_records(day: int, n: int, shift: float, seed: int, prefix: str = "r") -> list[object]:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    cities = rng.choice(["a", "b", "c"], n)
    return [
        record(
            f"{prefix}{day}-{i}",
            T0 + day * DAY + i * 1000,
            {"x": [float(x[i])], "city": [str(cities[i])]},
            [int(x[i] > 0)],
        )
        for i in range(n)
    ]


def with_reference(world: World) -> None:
    world.register("churn", {"accuracy": 0.9})
    world.monitoring.set_reference_profile(
        EDITOR, "churn", 1, build_profile(training(), prediction_column="prediction")
    )


def test_durations_and_window_specs() -> None:
    assert parse_duration("2d") == 172_800
    assert parse_duration("90m") == 5400
    assert parse_duration(30) == 30
    assert parse_window("1d") == (86_400, None)
    assert parse_window("1000") == (None, 1000)
    for bad in ("soon", "-1d", "0s"):
        with pytest.raises(InvalidInput):
            parse_window(bad)


def test_reference_profile_is_stored_with_the_version(world: World) -> None:
    with_reference(world)
    profile = world.monitoring.get_reference_profile(VIEWER, "churn", 1)
    assert profile.prediction_column == "prediction"
    assert profile["x"].edges
    with pytest.raises(PermissionDenied):
        world.monitoring.set_reference_profile(VIEWER, "churn", 1, profile)
    world.register("churn")
    with pytest.raises(NotFound):
        world.monitoring.get_reference_profile(VIEWER, "churn", 2)


def test_segments_are_published_once_by_sha256(world: World, tmp_path: Path) -> None:
    world.log(day_records(0, 50, 0.0, 1))
    with world.store.read() as unit:
        (segment,) = unit.monitoring.segments("churn")
    assert segment.rows == 50 and segment.deployments == ("churn",)
    assert (segment.min_time, segment.max_time) == (T0, T0 + 49_000)
    copy = world.artifacts.get_file(segment.sha256, tmp_path / segment.name)
    StoreSegmentPublisher(world.store, world.artifacts).publish(copy, segment_meta(copy))  # a retried publish
    with world.store.read() as unit:
        assert unit.monitoring.segments("churn") == [segment]
        assert unit.monitoring.segments("other") == []
        assert unit.monitoring.segments("churn", start=T0 + 50_000) == []


def test_time_windows_hysteresis_and_one_webhook_post_per_alert_state(world: World) -> None:
    with_reference(world)
    shifts = [0.0, 0.0, 2.0, 0.0, 2.0, 2.0, 2.0, 0.0]
    world.log([r for day, shift in enumerate(shifts) for r in day_records(day, 200, shift, seed=day)])
    with webhook_server() as hooks:
        world.monitoring.create_monitor(
            ADMIN, "churn-drift", "churn", window="1d", consecutive=3, webhook=hooks.url, kinds=["drift"]
        )
        # after day 5: the lone breach of day 2 and the two of days 4-5 open nothing
        result = world.monitoring.run_monitor(EDITOR, "churn-drift", now=T0 + 6 * DAY)
        assert result.windows == 6 and result.opened == []
        windows = world.monitoring.windows(VIEWER, "churn-drift")
        assert [w.breaches["drift"] for w in windows] == [False, False, True, False, True, True]
        assert windows[2].drift is not None and windows[2].drift["drifted_columns"] == ["x"]
        assert hooks.bodies == []
        # day 6 is the third consecutive breach: one alert, one POST
        result = world.monitoring.run_monitor(EDITOR, "churn-drift", now=T0 + 7 * DAY)
        assert result.windows == 1 and result.opened == [f"churn-drift:drift:{T0 + 4 * DAY}"]
        assert [b["event"] for b in hooks.bodies] == ["alert.opened"]
        assert hooks.bodies[0]["details"]["drifted_columns"] == ["x"] and hooks.bodies[0]["deployment"] == "churn"
        assert hooks.headers[0]["Idempotency-Key"] == f"churn-drift:drift:{T0 + 4 * DAY}:open"
        # running again at the same time changes nothing and posts nothing
        again = world.monitoring.run_monitor(EDITOR, "churn-drift", now=T0 + 7 * DAY)
        assert again.windows == 0 and again.opened == [] and len(hooks.bodies) == 1
        # day 7 recovers: the alert resolves, announced once
        result = world.monitoring.run_monitor(EDITOR, "churn-drift", now=T0 + 9 * DAY)
        assert result.resolved == [f"churn-drift:drift:{T0 + 4 * DAY}"]
        world.monitoring.run_monitor(EDITOR, "churn-drift", now=T0 + 10 * DAY)
        assert [b["event"] for b in hooks.bodies] == ["alert.opened", "alert.resolved"]
    (alert,) = world.monitoring.alerts(VIEWER, "churn-drift")
    assert alert.state == "resolved" and alert.delivered and alert.last_error is None
    assert (alert.first_window, alert.last_window) == (T0 + 4 * DAY, T0 + 7 * DAY)
    with world.store.read() as unit:
        actions = [e.action for e in read_events(unit.connection)]
    assert actions.count("alert.open") == 1 and actions.count("alert.resolve") == 1
    assert actions.count("alert.deliver") == 2


def test_a_webhook_that_is_down_does_not_break_the_run(world: World) -> None:
    with_reference(world)
    world.log([r for day in range(3) for r in day_records(day, 100, 3.0, seed=day)])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    world.monitoring.create_monitor(
        ADMIN, "m", "churn", window="1d", consecutive=2, webhook=f"http://127.0.0.1:{port}/down", kinds=["drift"]
    )
    result = world.monitoring.run_monitor(EDITOR, "m", now=T0 + 3 * DAY)
    assert len(result.opened) == 1 and result.delivered == 0
    assert result.delivery_errors and "ConnectError" in result.delivery_errors[0]
    (alert,) = world.monitoring.alerts(VIEWER, "m")
    assert alert.state == "open" and not alert.delivered and alert.attempts == 1 and alert.last_error


def test_count_windows(world: World) -> None:
    with_reference(world)
    world.log(day_records(0, 350, 0.0, seed=1))
    world.monitoring.create_monitor(EDITOR, "by-count", "churn", window="100")
    assert world.monitoring.run_monitor(EDITOR, "by-count", now=T0 + DAY).windows == 3
    assert world.monitoring.run_monitor(EDITOR, "by-count", now=T0 + DAY).windows == 0
    world.log(day_records(1, 60, 0.0, seed=2))
    assert world.monitoring.run_monitor(EDITOR, "by-count", now=T0 + 2 * DAY).windows == 1
    windows = world.monitoring.windows(VIEWER, "by-count")
    assert [w.rows for w in windows] == [100, 100, 100, 100]
    assert all(a.end_time <= b.start_time for a, b in itertools.pairwise(windows))


def test_late_labels_give_performance_after_the_delay_and_match_sklearn(world: World) -> None:
    world.register("churn", {"val_accuracy": 0.95})
    world.monitoring.set_reference_profile(
        EDITOR, "churn", 1, build_profile(training(), prediction_column="prediction")
    )
    rng = np.random.default_rng(7)
    n = 300
    x = rng.normal(0, 1, n)
    proba = 1 / (1 + np.exp(-2 * x))
    truth = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    records = [
        record(f"q{i}", T0 + i * 100, {"x": [float(x[i])], "city": ["a"]}, [[1 - float(proba[i]), float(proba[i])]])
        for i in range(n)
    ]
    world.log(records)
    world.monitoring.create_monitor(EDITOR, "perf", "churn", window="1d", label_delay="2d", kinds=["metric_drop"])
    labelled = [{"request_id": f"q{i}", "label": int(truth[i]), "time_ms": T0 + DAY + i} for i in range(n)]
    labelled.append({"request_id": "never-logged", "label": 1})  # accepted, matched if it ever shows up
    assert world.monitoring.record_feedback(EDITOR, labelled) == n + 1
    world.monitoring.run_monitor(EDITOR, "perf", now=T0 + 2 * DAY)
    (window,) = world.monitoring.windows(VIEWER, "perf")
    assert window.performance is None and window.breaches["metric_drop"] is None  # the label delay has not passed
    world.monitoring.run_monitor(EDITOR, "perf", now=T0 + 3 * DAY)
    (window,) = world.monitoring.windows(VIEWER, "perf")
    assert window.performance is not None and window.labelled_rows == n
    got = window.performance["metrics"]
    predicted = (proba > 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    assert got["precision"] == pytest.approx(skm.precision_score(truth, predicted))
    assert got["recall"] == pytest.approx(skm.recall_score(truth, predicted))
    assert got["f1"] == pytest.approx(skm.f1_score(truth, predicted))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, proba))
    assert got["log_loss"] == pytest.approx(skm.log_loss(truth, np.c_[1 - proba, proba]))
    assert window.performance["reference"] == {"accuracy": 0.95}
    assert window.breaches["metric_drop"] is True and "accuracy" in window.performance["drops"]
    delay = window.performance["label_delay_seconds"]
    delays = [(T0 + DAY + i - (T0 + i * 100)) / 1000 for i in range(n)]
    assert delay["max"] == pytest.approx(max(delays)) and delay["p50"] == pytest.approx(np.median(delays))


def test_labels_join_by_business_key(world: World) -> None:
    with_reference(world)
    world.log(
        [record(f"k{i}", T0 + i, {"x": [0.1 * i, -0.1 * i], "ride": [f"a{i}", f"b{i}"]}, [1, 0]) for i in range(40)]
    )
    world.monitoring.create_monitor(
        EDITOR, "keyed", "churn", window="1d", options={"key_column": "ride"}, thresholds={"min_labels": 10}
    )
    world.monitoring.record_feedback(EDITOR, [{"key": f"a{i}", "label": 1} for i in range(40)])
    world.monitoring.record_feedback(EDITOR, [{"key": f"b{i}", "label": int(i % 2)} for i in range(40)])
    world.monitoring.run_monitor(EDITOR, "keyed", now=T0 + DAY)
    (window,) = world.monitoring.windows(VIEWER, "keyed")
    assert window.labelled_rows == 80
    assert window.performance is not None and window.performance["metrics"]["accuracy"] == pytest.approx(60 / 80)


def test_feedback_validation(world: World) -> None:
    for bad in (
        [{"label": 1}],
        [{"request_id": "a", "key": "b", "label": 1}],
        [{"request_id": "a"}],
        [{"request_id": "a", "label": 1, "extra": 2}],
        [{"request_id": "a", "label": 1}, {"request_id": "a", "label": 0}],
        [{"request_id": "a", "label": 1}] * 10_001,
    ):
        with pytest.raises(InvalidInput):
            world.monitoring.record_feedback(EDITOR, bad)
    with pytest.raises(PermissionDenied):
        world.monitoring.record_feedback(VIEWER, [{"request_id": "a", "label": 1}])


def test_monitor_validation_and_permissions(world: World) -> None:
    world.monitoring.create_monitor(EDITOR, "m", "churn")
    with pytest.raises(AlreadyExists):
        world.monitoring.create_monitor(EDITOR, "m", "churn")
    with pytest.raises(PermissionDenied):
        world.monitoring.create_monitor(EDITOR, "w", "churn", webhook="http://127.0.0.1:9/x")
    with pytest.raises(PermissionDenied):
        world.monitoring.create_monitor(VIEWER, "v", "churn")
    for kwargs in ({"kinds": ["nope"]}, {"thresholds": {"bogus": 1}}, {"consecutive": 0}, {"window": "x"}):
        with pytest.raises(InvalidInput):
            world.monitoring.create_monitor(EDITOR, "bad", "churn", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        world.monitoring.create_monitor(ADMIN, "bad", "churn", webhook="file:///etc/passwd")
    with pytest.raises(MonitorNotFound):
        world.monitoring.run_monitor(EDITOR, "missing")


def test_gauges_and_report(world: World) -> None:
    with_reference(world)
    world.log([r for day in range(3) for r in day_records(day, 150, 1.5 * day, seed=day)])
    world.monitoring.create_monitor(EDITOR, "g", "churn", window="1d", options={"reference_metrics": {"accuracy": 0.9}})
    world.monitoring.record_feedback(
        EDITOR, [{"request_id": f"r{d}-{i}", "label": 1} for d in range(3) for i in range(150)]
    )
    world.monitoring.run_monitor(EDITOR, "g", now=T0 + 3 * DAY)
    text = exposition(world.store).decode()
    assert re.search(r'loopml_drift_score\{deployment="churn",feature="x"\} [0-9.]+', text)
    assert re.search(r'loopml_model_metric\{deployment="churn",metric="accuracy"\} [0-9.]+', text)
    page = world.monitoring.report_html(VIEWER, "g")
    assert page.startswith("<!DOCTYPE html>")
    for feature in ("x", "city"):
        card = page.split(f"<h3>{feature} ")[1].split("</div>")[0]
        assert card.count("<svg") == 2  # distribution and drift score over time
    assert not re.search(r"""(src|href)\s*=\s*['"]?https?:""", page)
    assert "<script" not in page
    assert "accuracy" in page.split("<h2>Performance</h2>")[1]


def test_metric_functions_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 500)
    p = np.where(rng.random(500) < 0.7, y, rng.integers(0, 3, 500))
    got = classification_metrics(y.tolist(), p.tolist())
    assert got["precision"] == pytest.approx(skm.precision_score(y, p, average="macro"))
    assert got["f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    truth = rng.gamma(2, 10, 400) + 1
    guess = truth + rng.normal(0, 3, 400)
    reg = regression_metrics(truth.tolist(), guess.tolist())
    assert reg["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth, guess)))
    assert reg["mae"] == pytest.approx(skm.mean_absolute_error(truth, guess))
    assert reg["mape"] == pytest.approx(skm.mean_absolute_percentage_error(truth, guess))
    assert reg["r2"] == pytest.approx(skm.r2_score(truth, guess))


def test_the_scheduler_runs_monitors_on_one_replica_only(world: World) -> None:
    from loopml.monitoring.scheduler import MonitorScheduler

    with_reference(world)
    world.log(day_records(0, 50, 0.0, seed=1))
    world.monitoring.create_monitor(EDITOR, "scheduled", "churn", window="1d")
    first = MonitorScheduler(world.monitoring, holder="replica-a")
    second = MonitorScheduler(world.monitoring, holder="replica-b")
    assert [r.windows for r in first.tick(now=T0 + DAY)] == [1]
    assert second.tick(now=T0 + DAY + 1000) == []  # replica-a holds the lease
    first.stop()  # releases it
    assert [r.windows for r in second.tick(now=T0 + 2 * DAY)] == [0]
    assert world.monitoring.get_monitor(VIEWER, "scheduled").last_run_at == T0 + 2 * DAY


def test_labels_and_options_must_be_plain_json_within_bounds(world: World) -> None:
    for label in (2**70, "x" * 70_000, "nul\x00"):
        with pytest.raises(InvalidInput):
            world.monitoring.record_feedback(EDITOR, [{"request_id": "a", "label": label}])
    with pytest.raises(InvalidInput):
        world.monitoring.create_monitor(EDITOR, "m", "churn", options={"task": "regression", "key_column": 2**70})
    with pytest.raises(InvalidInput):
        world.monitoring.create_monitor(EDITOR, "m", "churn", label_delay="99999999999d")


def test_late_labels_update_computed_windows_until_the_horizon_and_alerts_follow(world: World) -> None:
    with_reference(world)
    days = [day_records(day, 100, 0.0, seed=day) for day in range(3)]
    world.log([r for day in days for r in day])
    world.monitoring.create_monitor(
        EDITOR, "late", "churn", window="1d", label_delay="1d", consecutive=2, kinds=["metric_drop"],
        options={"label_horizon": "5d"},
    )  # fmt: skip

    def labels(right: bool, per_day: int) -> list[dict[str, object]]:
        return [
            {"request_id": r.request_id, "label": r.outputs[0] if right else 1 - r.outputs[0]}
            for day in days
            for r in day[:per_day]
        ]

    def judged() -> list[tuple[int, bool | None]]:
        return [(w.labelled_rows, w.breaches["metric_drop"]) for w in world.monitoring.windows(VIEWER, "late")]

    world.monitoring.record_feedback(EDITOR, labels(right=True, per_day=10))
    result = world.monitoring.run_monitor(EDITOR, "late", now=T0 + 4 * DAY)
    assert result.windows == 3 and judged() == [(10, None)] * 3  # too few labels to judge
    # the rest of the labels arrive after the windows were computed, and the model was wrong
    world.monitoring.record_feedback(EDITOR, labels(right=False, per_day=100))
    result = world.monitoring.run_monitor(EDITOR, "late", now=T0 + 5 * DAY)
    assert result.performance == 3 and judged() == [(100, True)] * 3
    assert result.opened == [f"late:metric_drop:{T0}"]
    assert world.monitoring.run_monitor(EDITOR, "late", now=T0 + 5 * DAY).performance == 0  # nothing new
    # corrected labels: the windows no longer breach, so the alert they raised resolves
    world.monitoring.record_feedback(EDITOR, labels(right=True, per_day=100))
    result = world.monitoring.run_monitor(EDITOR, "late", now=T0 + 5 * DAY + 1)
    assert judged() == [(100, False)] * 3 and result.resolved == [f"late:metric_drop:{T0}"]
    # a run past day 0's horizon (its end + 5d) makes day 0 final; labels that come later leave it alone
    world.monitoring.run_monitor(EDITOR, "late", now=T0 + 6 * DAY + 1)
    world.monitoring.record_feedback(EDITOR, labels(right=False, per_day=100))
    result = world.monitoring.run_monitor(EDITOR, "late", now=T0 + 6 * DAY + 2)
    assert judged() == [(100, False), (100, True), (100, True)] and result.performance == 2


def test_label_horizon_option_is_checked(world: World) -> None:
    with pytest.raises(InvalidInput, match="label horizon"):
        world.monitoring.create_monitor(EDITOR, "m", "churn", label_delay="3d", options={"label_horizon": "1d"})
    with pytest.raises(InvalidInput):
        world.monitoring.create_monitor(EDITOR, "m", "churn", options={"label_horizon": "soon"})
    monitor = world.monitoring.create_monitor(EDITOR, "m", "churn", options={"label_horizon": "2d"})
    assert monitor.options["label_horizon"] == 2 * 86_400


class UnreachableStore:
    """A segment publisher whose artifact store cannot be reached: sealed segments wait in the directory."""

    def publish(self, path: Path, meta: SegmentMeta) -> None:
        raise OSError(f"artifact store unreachable: {meta.name} stays at {path}")


def test_a_window_waits_for_requests_not_yet_published_and_the_run_counts_them(world: World, tmp_path: Path) -> None:
    with_reference(world)
    world.log(day_records(0, 50, 0.0, seed=1))  # published
    directory = tmp_path / "replicas"
    service = MonitoringService(world.store, world.artifacts, world.registry, request_log=directory)
    service.create_monitor(EDITOR, "fresh", "churn", window="1d")
    late = day_records(0, 30, 0.0, seed=2, prefix="late")  # the same day, still on a replica's disk
    stuck = RequestLog(directory, publisher=UnreachableStore(), flush_ms=60_000, seal_seconds=3600)
    stuck.append(late[0])
    stuck.seal()  # sealed, its publish failed: it waits in the directory
    publisher = StoreSegmentPublisher(world.store, world.artifacts)
    log = RequestLog(directory, publisher=publisher, flush_ms=60_000, seal_seconds=3600)
    for item in late[1:]:
        log.append(item)
    log.flush()  # on disk in the open segment, not published
    result = service.run_monitor(EDITOR, "fresh", now=T0 + DAY)
    assert (result.windows, result.pending) == (0, 30)  # day 0 is over, but 30 of its requests are on their way
    log.close()
    stuck.publisher = StoreSegmentPublisher(world.store, world.artifacts)  # the store is back
    stuck.close()
    result = service.run_monitor(EDITOR, "fresh", now=T0 + DAY)
    assert (result.windows, result.pending) == (1, 0)
    (window,) = service.windows(VIEWER, "fresh")
    assert window.rows == 80


def test_metric_drop_compares_with_the_replaced_version_and_the_champion(world: World) -> None:
    world.register("churn", {"accuracy": 0.9})
    world.register("churn", {"accuracy": 0.5})  # v2 promised little at registration
    world.register("churn", {"accuracy": 0.95})
    world.registry.set_alias(EDITOR, "churn", "champion", 3)
    rng = np.random.default_rng(5)
    records, labels = [], []
    for day in range(5):
        version, right = (1, 1.0) if day < 2 else (2, 0.7)  # v2 takes over on day 2 and is worse than v1 was
        for i in range(100):
            predicted = int(rng.integers(0, 2))
            request_id = f"v{day}-{i}"
            records.append(record(request_id, T0 + day * DAY + i, {"x": [0.0]}, [predicted], version=version))
            labels.append({"request_id": request_id, "label": predicted if i < 100 * right else 1 - predicted})
    world.log(records)
    world.monitoring.record_feedback(EDITOR, labels)
    for name, baseline in (("own", "registration"), ("replaced", ["registration", "replaced"]), ("champ", "champion")):
        world.monitoring.create_monitor(
            EDITOR, name, "churn", window="1d", consecutive=2, kinds=["metric_drop"], options={"baseline": baseline}
        )
        world.monitoring.run_monitor(EDITOR, name, now=T0 + 5 * DAY)

    def verdicts(name: str) -> list[bool | None]:
        return [w.breaches["metric_drop"] for w in world.monitoring.windows(VIEWER, name)]

    assert verdicts("own") == [False, False, False, False, False]  # 0.7 realised beats the 0.5 registered
    assert verdicts("replaced") == [False, False, True, True, True]  # v1 realised 1.0 on live traffic
    day2 = world.monitoring.windows(VIEWER, "replaced")[2].performance
    assert day2 is not None and day2["baselines"]["replaced"]["version"] == 1
    assert day2["baselines"]["replaced"]["source"] == "realised"
    assert day2["baselines"]["replaced"]["metrics"]["accuracy"] == pytest.approx(1.0)
    assert day2["drops"]["replaced.accuracy"] == pytest.approx(-0.3)
    assert [a.kind for a in world.monitoring.alerts(VIEWER, "replaced")] == ["metric_drop"]
    assert verdicts("champ") == [False, False, True, True, True]  # v3, the champion, registered 0.95
    page = world.monitoring.report_html(VIEWER, "replaced")
    assert page.count("version changed") == 1 and "churn v2 takes over" in page


def test_baseline_option_is_checked(world: World) -> None:
    for bad in ("yesterday", [], ["replaced", "replaced"], 3):
        with pytest.raises(InvalidInput, match="baseline"):
            world.monitoring.create_monitor(EDITOR, "m", "churn", options={"baseline": bad})


def test_backfill_of_a_file_gives_the_same_windows_as_serving_those_requests(world: World, tmp_path: Path) -> None:
    with_reference(world)
    served = [r for day, shift in enumerate([0.0, 0.0, 2.0, 2.0]) for r in day_records(day, 120, shift, seed=day)]
    world.log(served)
    rng = np.random.default_rng(11)
    truth = [int(r.outputs[0]) if rng.random() < 0.8 else 1 - int(r.outputs[0]) for r in served]
    rows = pd.DataFrame(
        {
            "request_id": [r.request_id for r in served],
            "time_ms": [r.time_ms for r in served],
            "x": [r.inputs["x"][0] for r in served],
            "city": [r.inputs["city"][0] for r in served],
            "prediction": [r.outputs[0] for r in served],
        }
    )
    rows.to_parquet(tmp_path / "requests.parquet")
    pd.DataFrame({"request_id": rows["request_id"], "label": truth}).to_csv(tmp_path / "labels.csv", index=False)
    world.monitoring.record_feedback(EDITOR, read_backfill_labels(tmp_path / "labels.csv"))
    settings = {"window": "1d", "label_delay": "1d", "consecutive": 2, "model": "churn", "version": 1}
    world.monitoring.create_monitor(EDITOR, "served", "churn", **settings)  # type: ignore[arg-type]
    world.monitoring.create_monitor(EDITOR, "backtest", "nothing-served", **settings)  # type: ignore[arg-type]
    live = world.monitoring.run_monitor(EDITOR, "served", now=T0 + 6 * DAY)
    requests = read_backfill_requests(tmp_path / "requests.parquet")
    replay = world.monitoring.backfill(EDITOR, "backtest", requests, now=T0 + 6 * DAY)

    def comparable(name: str) -> list[dict[str, object]]:
        return [{**window_to_json(w), "monitor": None} for w in world.monitoring.windows(VIEWER, name)]

    assert len(comparable("served")) == 4 and comparable("backtest") == comparable("served")
    assert (replay.windows, replay.performance) == (live.windows, live.performance) == (4, 4)
    assert [a.split(":", 1)[1] for a in replay.opened] == [a.split(":", 1)[1] for a in live.opened] != []
    with pytest.raises(InvalidInput, match="already has windows"):
        world.monitoring.backfill(EDITOR, "backtest", requests, now=T0 + 6 * DAY)


def test_windows_by_event_time_and_a_backfill_by_event_time_alone(world: World, tmp_path: Path) -> None:
    with_reference(world)
    # requests served on day 9 about rides on days 0-2: by arrival they all fall in one window
    rides = []
    for day in range(3):
        for i in range(40):
            happened = T0 + day * DAY + i * 60_000
            stamp = pd.Timestamp(happened, unit="ms").isoformat()
            rides.append(record(f"e{day}-{i}", T0 + 9 * DAY + day * 1000 + i, {"x": [0.1], "ts": [stamp]}, [1]))
    world.log(rides)
    world.monitoring.create_monitor(EDITOR, "arrival", "churn", window="1d")
    world.monitoring.create_monitor(EDITOR, "event", "churn", window="1d", options={"time_field": "ts"})
    world.monitoring.run_monitor(EDITOR, "arrival", now=T0 + 10 * DAY)
    world.monitoring.run_monitor(EDITOR, "event", now=T0 + 10 * DAY)
    assert [(w.start_time, w.rows) for w in world.monitoring.windows(VIEWER, "arrival")] == [(T0 + 9 * DAY, 120)]
    by_event = [(w.start_time, w.rows) for w in world.monitoring.windows(VIEWER, "event")]
    assert by_event == [(T0, 40), (T0 + DAY, 40), (T0 + 2 * DAY, 40)]
    # a file with the event time and no serving time builds the same windows
    frame = pd.DataFrame(
        {
            "request_id": [r.request_id for r in rides],
            "x": [0.1] * len(rides),
            "ts": pd.to_datetime([r.inputs["ts"][0] for r in rides]),
            "prediction": [1] * len(rides),
        }
    )
    frame.to_csv(tmp_path / "rides.csv", index=False)
    world.monitoring.create_monitor(
        EDITOR, "event-backtest", "churn", window="1d", model="churn", version=1, options={"time_field": "ts"}
    )
    requests = read_backfill_requests(tmp_path / "rides.csv", time_column="ts")
    world.monitoring.backfill(EDITOR, "event-backtest", requests, now=T0 + 10 * DAY)
    assert [(w.start_time, w.rows) for w in world.monitoring.windows(VIEWER, "event-backtest")] == by_event
    with pytest.raises(InvalidInput, match="time window"):
        world.monitoring.create_monitor(EDITOR, "bad", "churn", window="100", options={"time_field": "ts"})


def test_a_dead_replicas_leftover_segment_is_pending_but_holds_no_window_back(world: World, tmp_path: Path) -> None:
    from loopml.serving.segments import OpenSegment, encode_record

    with_reference(world)
    world.log(day_records(0, 50, 0.0, seed=1))
    directory = tmp_path / "replicas"
    directory.mkdir()
    leftover = OpenSegment(directory / "segment-deadhost-1-abcdef-000001.open")  # its process died
    leftover.write([encode_record(r) for r in day_records(0, 5, 0.0, seed=2, prefix="dead")])
    leftover.close()
    service = MonitoringService(world.store, world.artifacts, world.registry, request_log=directory)
    service.create_monitor(EDITOR, "fresh", "churn", window="1d")
    result = service.run_monitor(EDITOR, "fresh", now=T0 + DAY)
    assert (result.windows, result.pending) == (1, 5)
