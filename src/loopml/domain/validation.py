"""Checks on names, keys and values that every entry point (SDK, REST, CLI) shares."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from loopml.errors import InvalidMetric, InvalidName

MAX_NAME = 250
MAX_VALUE = 8000
_KEY = re.compile(r"^[A-Za-z0-9_\-. /:]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
INT64 = 2**63 - 1


def check_name(kind: str, name: object) -> str:
    """A project, experiment or run name: 1 to 250 printable characters."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidName(f"{kind} name must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME:
        raise InvalidName(f"{kind} name is {len(name)} characters long; the limit is {MAX_NAME}")
    if _CONTROL.search(name):
        raise InvalidName(f"{kind} name {name!r} contains a control character (newline, tab, NUL...)")
    return name


def check_key(kind: str, key: object) -> str:
    """A metric, param or tag key: letters, digits, `_ - . / :` and spaces; no `..` segment, no leading `/`."""
    if not isinstance(key, str) or not key:
        raise InvalidName(f"{kind} key must be a non-empty string, got {key!r}")
    if len(key) > MAX_NAME:
        raise InvalidName(f"{kind} key {key[:40]!r}... is {len(key)} characters long; the limit is {MAX_NAME}")
    if not _KEY.match(key):
        raise InvalidName(
            f"{kind} key {key!r} has a character that is not allowed: use letters, digits, "
            "underscore, dash, period, slash, colon and space"
        )
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidName(f"{kind} key {key!r} must not start with '/' or contain a '..' segment")
    return key


def check_values(kind: str, values: Mapping[str, object]) -> dict[str, str]:
    """Param or tag values: strings (numbers and booleans are turned into their text) up to 8000 chars."""
    if not isinstance(values, Mapping):
        raise InvalidName(f"{kind}s must be a mapping of key to value, got {type(values).__name__}")
    checked: dict[str, str] = {}
    for key, value in values.items():
        check_key(kind, key)
        if value is None or isinstance(value, list | dict | tuple | set):
            raise InvalidName(f"{kind} {key!r} must be a string or a number, got {type(value).__name__}")
        text = value if isinstance(value, str) else str(value)
        if "\x00" in text:
            raise InvalidName(f"{kind} {key!r} contains a NUL character, which no store can keep")
        if len(text) > MAX_VALUE:
            raise InvalidName(
                f"{kind} {key!r} is {len(text)} characters long; the limit is {MAX_VALUE} "
                "(log long text as an artifact instead)"
            )
        checked[key] = text
    return checked


def check_metric(key: object, value: object, step: object, timestamp: object) -> None:
    check_key("metric", key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMetric(f"metric {key!r} value must be a number, got {value!r}")
    if isinstance(value, int) and not math.isfinite(float(value)):  # pragma: no cover - ints are finite
        raise InvalidMetric(f"metric {key!r} value {value!r} is out of range")
    if isinstance(step, bool) or not isinstance(step, int) or not -INT64 <= step <= INT64:
        raise InvalidMetric(f"metric {key!r} step must be an integer in the 64-bit range, got {step!r}")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= INT64:
        raise InvalidMetric(
            f"metric {key!r} timestamp must be milliseconds since the epoch (a non-negative integer), got {timestamp!r}"
        )


def check_metrics(points: Iterable[tuple[str, float, int, int]]) -> None:
    """`check_metric` for many (key, value, step, timestamp) points: each distinct key is checked once, and
    the common types (float value, int step and timestamp) take a fast path."""
    seen: set[str] = set()
    for key, value, step, timestamp in points:
        if key not in seen:
            check_key("metric", key)
            seen.add(key)
        if (
            value.__class__ is not float
            or step.__class__ is not int
            or timestamp.__class__ is not int
            or not -INT64 <= step <= INT64
            or not 0 <= timestamp <= INT64
        ):
            check_metric(key, value, step, timestamp)
