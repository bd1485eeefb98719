"""Reading what a user writes for a retraining policy: triggers (`drift:3`, `metric-drop:10%`,
`schedule:0 3 * * 1`, `dataset:bike-hours`), durations (`1d`, `12h`, `30m`, `45s`) and gate YAML."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from loopml.domain.retrain import TRIGGER_KINDS, RetrainTrigger
from loopml.errors import InvalidInput

__all__ = ["latest_tick", "parse_duration", "parse_trigger", "parse_triggers"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_WINDOWS = 1000


def parse_duration(what: str, value: object) -> int:
    """Seconds in `30s`, `15m`, `12h`, `1d`, `2w` or a bare number of seconds."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a duration such as 1d, 12h, 30m or a number of seconds, got {value!r}")
    if isinstance(value, int) and value >= 0:
        return value
    found = _DURATION.match(str(value)) if isinstance(value, str) else None
    if found is None:
        raise InvalidInput(f"{what} must be a duration such as 1d, 12h, 30m or a number of seconds, got {value!r}")
    return int(found.group(1)) * _UNITS[found.group(2)]


def _windows(text: str, spec: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_WINDOWS:
        raise InvalidInput(f"trigger {spec!r}: the number of consecutive windows must be 1 to {MAX_WINDOWS}")
    return int(text)


def parse_trigger(spec: object) -> RetrainTrigger:
    """One trigger from its text (`drift:3`, `error-rate:2`, `metric-drop:10%`, `metric-drop:10%x2`,
    `schedule:0 3 * * 1`, `dataset:NAME`) or its JSON object."""
    if isinstance(spec, Mapping):
        return _from_mapping(spec)
    if not isinstance(spec, str) or ":" not in spec:
        raise InvalidInput(
            f"trigger {spec!r} is not KIND:VALUE; use drift:3, error-rate:2, metric-drop:10%, "
            "schedule:'0 3 * * 1' or dataset:NAME"
        )
    kind, _, value = spec.partition(":")
    kind = kind.strip().lower().replace("-", "_")
    value = value.strip()
    if kind in ("drift", "error_rate"):
        return RetrainTrigger(kind, windows=_windows(value or "1", spec))
    if kind == "metric_drop":
        found = re.fullmatch(r"(\d+(?:\.\d+)?)%(?:x(\d+))?", value)
        if found is None:
            raise InvalidInput(
                f"trigger {spec!r}: metric-drop takes a relative drop in percent, optionally with a number of "
                "consecutive windows: metric-drop:10% or metric-drop:10%x2"
            )
        return _metric_drop(float(found.group(1)) / 100, _windows(found.group(2) or "1", spec), spec)
    if kind in ("schedule", "cron"):
        return RetrainTrigger("schedule", cron=_cron(value))
    if kind == "dataset":
        from loopml.domain.validation import check_name

        return RetrainTrigger("dataset", dataset=check_name("dataset", value))
    raise InvalidInput(f"unknown trigger kind {kind!r} in {spec!r}: use one of {', '.join(TRIGGER_KINDS)}")


def _metric_drop(threshold: float, windows: int, spec: object) -> RetrainTrigger:
    if not 0 < threshold < 1:
        raise InvalidInput(f"trigger {spec!r}: the metric drop must be between 0% and 100% (exclusive)")
    return RetrainTrigger("metric_drop", windows=windows, threshold=threshold)


def _cron(expression: str) -> str:
    from croniter import croniter

    text = " ".join(str(expression).split())
    if len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise InvalidInput(
            f"invalid cron expression {expression!r}: use five fields, minute hour day-of-month month "
            "day-of-week (e.g. '0 3 * * 1' for 03:00 UTC every Monday)"
        )
    return text


def latest_tick(expression: str, after_ms: int, now_ms: int) -> int | None:
    """The latest tick of `expression` in (after_ms, now_ms], or None."""
    from datetime import UTC, datetime, timedelta

    from croniter import croniter

    start = datetime.fromtimestamp(after_ms / 1000, UTC)
    if int(croniter(expression, start).get_next(datetime).timestamp() * 1000) > now_ms:
        return None
    end = datetime.fromtimestamp(now_ms / 1000, UTC) + timedelta(milliseconds=1)
    return int(croniter(expression, end).get_prev(datetime).timestamp() * 1000)


def _from_mapping(spec: Mapping[str, Any]) -> RetrainTrigger:
    kind = spec.get("kind")
    if kind not in TRIGGER_KINDS:
        raise InvalidInput(f"trigger {dict(spec)!r}: kind must be one of {', '.join(TRIGGER_KINDS)}")
    windows = spec.get("windows", 1)
    if isinstance(windows, bool) or not isinstance(windows, int) or not 1 <= windows <= MAX_WINDOWS:
        raise InvalidInput(f"trigger {dict(spec)!r}: windows must be an integer from 1 to {MAX_WINDOWS}")
    if kind == "metric_drop":
        threshold = spec.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise InvalidInput(f"trigger {dict(spec)!r}: metric_drop needs a threshold, a fraction such as 0.1")
        return _metric_drop(float(threshold), windows, dict(spec))
    if kind == "schedule":
        return RetrainTrigger("schedule", cron=_cron(str(spec.get("cron") or "")))
    if kind == "dataset":
        from loopml.domain.validation import check_name

        return RetrainTrigger("dataset", dataset=check_name("dataset", spec.get("dataset")))
    return RetrainTrigger(str(kind), windows=windows)


def parse_triggers(specs: object) -> tuple[RetrainTrigger, ...]:
    if isinstance(specs, str | Mapping) or not isinstance(specs, list | tuple) or not specs:
        raise InvalidInput("a retraining policy needs at least one trigger, e.g. ['drift:3', 'metric-drop:10%']")
    if len(specs) > 20:
        raise InvalidInput("a retraining policy takes at most 20 triggers")
    return tuple(parse_trigger(s) for s in specs)
