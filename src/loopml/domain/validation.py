"""Checks on names, keys and values that every entry point (SDK, REST, CLI) shares."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import cast

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


def check_metric_columns(
    keys: Sequence[object], values: Sequence[object], steps: Sequence[object], timestamps: Sequence[object]
) -> None:
    """`check_metric` for a batch in columns: each distinct key once, the common types (float values, int
    steps and timestamps) checked by one pass per column; the slow path names the offending point."""
    n = len(keys)
    if not len(values) == len(steps) == len(timestamps) == n:
        raise InvalidMetric(
            f"keys, values, steps and timestamps must have equal lengths, got "
            f"{n}, {len(values)}, {len(steps)}, {len(timestamps)}"
        )
    if n == 0:
        return
    for key in set(keys):
        check_key("metric", key)
    # `set(map(type, ...))` walks a column at C speed (a generator of `is` tests costs 3x more per point)
    fast = set(map(type, values)) == {float} and set(map(type, steps)) == {int} and set(map(type, timestamps)) == {int}
    if fast:
        int_steps, int_stamps = cast("Sequence[int]", steps), cast("Sequence[int]", timestamps)
        fast = min(int_steps) >= -INT64 and max(int_steps) <= INT64
        fast = fast and min(int_stamps) >= 0 and max(int_stamps) <= INT64
    if not fast:
        for point in zip(keys, values, steps, timestamps, strict=True):
            check_metric(*point)


_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
RESERVED_ALIASES = frozenset({"latest"})


def check_model_name(name: object) -> str:
    """A registered model name: an experiment-style name without `@` or `/` (so `models:/name@alias` and
    `models:/name/3` parse), and not `.` or `..` (it is a segment of REST paths)."""
    name = check_name("model", name)
    if "@" in name or "/" in name:
        raise InvalidName(f"model name {name!r} must not contain '@' or '/' (they separate aliases and versions)")
    if name.strip() in (".", "..") or name != name.strip():
        raise InvalidName(f"model name {name!r} must not be '.' or '..' or start or end with whitespace")
    return name


def check_alias(alias: object) -> str:
    """An alias: a lowercase letter, then up to 62 lowercase letters, digits, `_` or `-`; not `latest`."""
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InvalidName(
            f"alias {alias!r} is not valid: start with a lowercase letter, then use up to 62 lowercase letters, "
            "digits, '_' or '-' (e.g. champion, challenger, canary-2)"
        )
    if alias in RESERVED_ALIASES:
        raise InvalidName(f"alias {alias!r} is reserved: models:/<name>@latest always means the newest READY version")
    return alias
