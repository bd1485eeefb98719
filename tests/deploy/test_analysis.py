"""The rollout analysis as a pure function: each check's verdict and the numbers it reports."""

from __future__ import annotations

import numpy as np
import pytest

from loopml.deploy import Thresholds, WindowStats, analyze, explain
from loopml.errors import InvalidInput


def window(
    requests: int = 200, error_share: float = 0.0, latency_ms: float = 10.0, shift: float = 0.0, seed: int = 1
) -> WindowStats:
    rng = np.random.default_rng(seed)
    latencies = rng.normal(latency_ms, 1.0, requests).clip(min=0.1)
    errors = round(requests * error_share)
    predictions = rng.normal(100.0 + shift, 10.0, requests - errors)
    return WindowStats(requests, errors, latencies.tolist(), predictions.tolist())


def test_a_candidate_like_the_stable_version_passes() -> None:
    outcome, numbers = analyze(window(seed=1), window(seed=2), Thresholds())
    assert outcome == "success"
    assert numbers["failed_checks"] == []
    assert numbers["stable_requests"] == numbers["candidate_requests"] == 200
    assert abs(numbers["p99_increase_ms"]) < 5
    assert numbers["prediction_distance"] < 0.25
    assert explain(outcome, numbers).startswith("candidate within thresholds")


def test_twenty_percent_errors_fail_on_error_rate() -> None:
    outcome, numbers = analyze(window(seed=1), window(error_share=0.2, seed=2), Thresholds())
    assert outcome == "failed"
    assert numbers["failed_checks"] == ["error_rate"]
    assert numbers["candidate_error_rate"] == pytest.approx(0.2)
    assert numbers["error_rate_increase"] == pytest.approx(0.2)
    assert "error rate 20.00%" in explain(outcome, numbers)


def test_fifty_ms_more_fails_on_p99_latency() -> None:
    outcome, numbers = analyze(window(seed=1), window(latency_ms=60.0, seed=2), Thresholds())
    assert outcome == "failed"
    assert numbers["failed_checks"] == ["p99_latency"]
    assert numbers["p99_increase_ms"] == pytest.approx(50, abs=3)
    assert numbers["p99_ratio"] > 4


def test_shifted_predictions_fail_on_prediction_distance() -> None:
    outcome, numbers = analyze(window(seed=1), window(shift=8.0, seed=2), Thresholds())
    assert outcome == "failed"
    assert numbers["failed_checks"] == ["prediction_distance"]
    assert numbers["prediction_distance"] > 0.5


def test_too_little_traffic_is_inconclusive_whatever_the_numbers() -> None:
    outcome, numbers = analyze(window(seed=1), window(requests=20, error_share=0.5, seed=2), Thresholds())
    assert outcome == "inconclusive"
    assert numbers["candidate_requests"] == 20
    assert "too little traffic" in explain(outcome, numbers)


def test_thresholds_are_configurable_and_checked() -> None:
    loose = Thresholds.from_mapping({"max_error_rate_increase": 0.5, "min_requests": 10})
    assert analyze(window(seed=1), window(error_share=0.2, seed=2), loose)[0] == "success"
    assert Thresholds.from_mapping(None) == Thresholds()
    for bad in ({"nope": 1}, {"min_requests": 1.5}, {"max_p99_increase_ms": -1}, {"failure_limit": 0}):
        with pytest.raises(InvalidInput):
            Thresholds.from_mapping(bad)


def test_constant_stable_predictions_still_give_a_finite_distance() -> None:
    stable = WindowStats(100, 0, [1.0] * 100, [1.0] * 100)
    candidate = WindowStats(100, 0, [1.0] * 100, [0.0] * 50 + [1.0] * 50)
    outcome, numbers = analyze(stable, candidate, Thresholds())
    assert outcome == "failed"
    assert numbers["prediction_distance"] == pytest.approx(0.5 / np.sqrt(0.75 * 0.25), abs=1e-3)  # by the pooled std


def labels_window(shares: dict[str, float], n: int = 400, seed: int = 1, latency_ms: float = 10.0) -> WindowStats:
    rng = np.random.default_rng(seed)
    classes = list(shares)
    predicted = rng.choice(classes, size=n, p=[shares[c] for c in classes]).tolist()
    return WindowStats(n, 0, rng.normal(latency_ms, 1.0, n).clip(min=0.1).tolist(), predicted)


def test_a_classifier_answering_labels_gets_a_distance_from_its_class_shares() -> None:
    stable = labels_window({">50K": 0.25, "<=50K": 0.75}, seed=1)
    same = labels_window({">50K": 0.25, "<=50K": 0.75}, seed=2)
    outcome, numbers = analyze(stable, same, Thresholds())
    assert outcome == "success"
    assert (numbers["prediction_kind"], numbers["prediction_distance_method"]) == ("label", "psi_of_class_shares")
    assert numbers["prediction_distance"] < 0.05

    flipped = labels_window({">50K": 0.75, "<=50K": 0.25}, seed=3)
    outcome, numbers = analyze(stable, flipped, Thresholds())
    assert outcome == "failed" and numbers["failed_checks"] == ["prediction_distance"]
    assert numbers["prediction_distance"] > 1.0  # PSI of 25/75 against 75/25
    assert numbers["prediction_total_variation"] == pytest.approx(0.5, abs=0.06)
    assert "psi_of_class_shares" in explain(outcome, numbers)


def test_integer_class_labels_are_classes_and_probability_lists_are_compared_per_class() -> None:
    rng = np.random.default_rng(0)
    stable = WindowStats(300, 0, [5.0] * 300, rng.choice([0, 1, 2], 300).tolist())
    candidate = WindowStats(300, 0, [5.0] * 300, [2] * 300)
    outcome, numbers = analyze(stable, candidate, Thresholds())
    assert (outcome, numbers["prediction_kind"]) == ("failed", "label")

    def probabilities(shift: float, seed: int) -> list[list[float]]:
        p = np.random.default_rng(seed).beta(2 + shift, 5, 300)
        return [[1 - float(v), float(v)] for v in p]

    stable = WindowStats(300, 0, [5.0] * 300, probabilities(0, 1))
    outcome, numbers = analyze(stable, WindowStats(300, 0, [5.0] * 300, probabilities(0, 2)), Thresholds())
    assert (outcome, numbers["prediction_kind"]) == ("success", "probabilities")
    assert len(numbers["prediction_per_class"]) == 2
    outcome, numbers = analyze(stable, WindowStats(300, 0, [5.0] * 300, probabilities(4, 2)), Thresholds())
    assert outcome == "failed" and numbers["failed_checks"] == ["prediction_distance"]
    assert numbers["prediction_distance"] == max(numbers["prediction_per_class"])


@pytest.mark.parametrize(
    ("stable_predictions", "candidate_predictions", "why"),
    [
        ([{"label": "a"}] * 100, [{"label": "a"}] * 100, "neither numbers, class labels nor class probabilities"),
        (["a"] * 100, [1.5] * 100, "the stable version predicts labels and the candidate numbers"),
        ([[0.5, 0.5]] * 100, [[0.2, 0.3, 0.5]] * 100, "2 class probabilities and the candidate 3"),
    ],
)
def test_a_distance_that_cannot_be_computed_is_inconclusive_never_a_pass(
    stable_predictions: list[object], candidate_predictions: list[object], why: str
) -> None:
    stable = WindowStats(100, 0, [5.0] * 100, stable_predictions)
    candidate = WindowStats(100, 0, [5.0] * 100, candidate_predictions)
    outcome, numbers = analyze(stable, candidate, Thresholds())
    assert outcome == "inconclusive"
    assert numbers["prediction_distance"] is None
    assert numbers["undecided_checks"] == ["prediction_distance"]
    assert why in numbers["notes"]["prediction_distance"]
    assert why in explain(outcome, numbers)


def test_identical_constant_predictions_are_at_distance_zero() -> None:
    constant = WindowStats(100, 0, [1.0] * 100, [3.0] * 100)
    outcome, numbers = analyze(constant, constant, Thresholds())
    assert (outcome, numbers["prediction_distance"]) == ("success", 0.0)


def test_latency_needs_enough_samples_on_each_side() -> None:
    outcome, numbers = analyze(window(requests=900, seed=1), window(requests=80, latency_ms=60, seed=2), Thresholds())
    assert outcome == "inconclusive"
    assert numbers["undecided_checks"] == ["p99_latency"]
    assert "80 candidate latencies (at least 100 each needed)" in explain(outcome, numbers)


def test_a_few_stalls_of_a_small_canary_on_a_busy_machine_do_not_fail_it() -> None:
    stable, candidate = window(requests=900, seed=1), window(requests=120, seed=2)
    stalled = [*candidate.latencies_ms[:-2], 45.0, 60.0]  # two requests descheduled for tens of ms
    candidate = WindowStats(120, 0, stalled, candidate.predictions)
    outcome, numbers = analyze(stable, candidate, Thresholds())
    assert numbers["p99_increase_ms"] > 25  # what the old absolute check failed on
    assert outcome == "success"
    assert numbers["candidate_slow_share"] == pytest.approx(2 / 120, abs=1e-4)


def test_a_slower_candidate_fails_only_beyond_both_margins() -> None:
    busy = window(requests=900, latency_ms=80, seed=1)  # stable p99 about 82 ms: the relative margin is 41 ms
    outcome, numbers = analyze(busy, window(requests=200, latency_ms=110, seed=2), Thresholds())
    assert outcome == "success" and numbers["p99_increase_ms"] > 25
    outcome, numbers = analyze(busy, window(requests=200, latency_ms=130, seed=2), Thresholds())
    assert outcome == "failed" and numbers["failed_checks"] == ["p99_latency"]
    assert numbers["latency_limit_ms"] == pytest.approx(numbers["stable_p99_ms"] * 1.5, abs=0.01)


def labelled(accuracy: float, n: int, seed: int) -> list[tuple[object, object]]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(["yes", "no"], n).tolist()
    return [(y if rng.random() < accuracy else ("no" if y == "yes" else "yes"), y) for y in truth]


def test_a_classifier_17_points_less_accurate_fails_on_quality() -> None:
    good, bad = labelled(0.85, 300, 1), labelled(0.68, 300, 2)
    stable = WindowStats(300, 0, [5.0] * 300, [p for p, _ in good], good)
    candidate = WindowStats(300, 0, [5.0] * 300, [p for p, _ in bad], bad)
    outcome, numbers = analyze(stable, candidate, Thresholds())
    assert outcome == "failed" and numbers["failed_checks"] == ["quality"]
    quality = numbers["quality"]
    assert (quality["metric"], quality["verdict"]) == ("accuracy", "fail")
    assert quality["stable"] - quality["candidate"] == pytest.approx(0.17, abs=0.05)
    assert "accuracy" in explain(outcome, numbers)


def test_quality_waits_for_labels_and_tolerates_noise() -> None:
    good = labelled(0.85, 300, 1)
    stable = WindowStats(300, 0, [5.0] * 300, [p for p, _ in good], good)
    few = labelled(0.5, 40, 2)
    outcome, numbers = analyze(stable, WindowStats(300, 0, [5.0] * 300, [p for p, _ in good], few), Thresholds())
    assert outcome == "success"
    assert numbers["quality"]["verdict"] == "waiting"
    assert "40 candidate labels (at least 100 each needed)" in numbers["quality"]["note"]
    slightly = labelled(0.80, 300, 3)  # 5 points worse on 300 labels: within noise of the 5-point threshold
    outcome, numbers = analyze(stable, WindowStats(300, 0, [5.0] * 300, [p for p, _ in good], slightly), Thresholds())
    assert (outcome, numbers["quality"]["verdict"]) == ("success", "pass")


def test_a_regressor_fails_on_its_mean_absolute_error() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(100, 20, 400)
    close = [(float(t + rng.normal(0, 5)), float(t)) for t in truth]
    far = [(float(t + rng.normal(0, 15)), float(t)) for t in truth]
    stable = WindowStats(400, 0, [5.0] * 400, [p for p, _ in close], close)
    outcome, numbers = analyze(stable, WindowStats(400, 0, [5.0] * 400, [p for p, _ in far], far), Thresholds())
    assert outcome == "failed" and "quality" in numbers["failed_checks"]
    assert numbers["quality"]["metric"] == "mae"
    assert numbers["quality"]["candidate"] > 2 * numbers["quality"]["stable"]


def test_probability_outputs_are_scored_against_class_labels_in_sorted_class_order() -> None:
    def answers(accuracy: float, seed: int) -> list[tuple[object, object]]:
        rng = np.random.default_rng(seed)
        pairs: list[tuple[object, object]] = []
        for truth in rng.choice(["busy", "quiet"], 300).tolist():
            right = rng.random() < accuracy
            busy = (truth == "busy") == right  # classes in scikit-learn's order: busy, quiet
            p = float(rng.uniform(0.6, 0.95))
            pairs.append(([p, 1 - p] if busy else [1 - p, p], truth))
        return pairs

    good, bad = answers(0.9, 1), answers(0.65, 2)
    stable = WindowStats(300, 0, [5.0] * 300, [p for p, _ in good], good)
    outcome, numbers = analyze(stable, WindowStats(300, 0, [5.0] * 300, [p for p, _ in bad], bad), Thresholds())
    assert outcome == "failed" and "quality" in numbers["failed_checks"]
    assert numbers["quality"]["stable"] == pytest.approx(0.9, abs=0.05)
    assert numbers["quality"]["candidate"] == pytest.approx(0.65, abs=0.06)

    only_busy = [(p, "busy") for p, _ in good]  # one class of labels: which position is "busy" is unknown
    unsure = WindowStats(300, 0, [5.0] * 300, [p for p, _ in good], only_busy)
    outcome, numbers = analyze(unsure, unsure, Thresholds())
    assert (outcome, numbers["undecided_checks"]) == ("inconclusive", ["quality"])
    assert "labels do not say which is which" in explain(outcome, numbers)
