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
