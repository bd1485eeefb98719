"""What a window's realised metrics are compared with for the `metric_drop` rule (the monitor's `baseline`
option): the serving version's own metrics at registration, the version it replaced, or the model's champion.

The replaced version is the one that served the windows just before the serving version took over. It is
judged by what it achieved on live traffic: the realised metrics of its latest window with labels before the
change, or, when none of its windows had labels, its metrics at registration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loopml.domain.monitoring import MonitorWindow
from loopml.errors import InvalidInput

__all__ = ["BASELINES", "CHAMPION_ALIAS", "check_baselines", "replaced", "version_changes"]

BASELINES = ("registration", "replaced", "champion")
CHAMPION_ALIAS = "champion"


def check_baselines(given: Any) -> list[str]:
    """The `baseline` option as a list: one name or a list of names from `BASELINES`."""
    chosen = [given] if isinstance(given, str) else given
    if not isinstance(chosen, list) or not chosen or any(b not in BASELINES for b in chosen):
        raise InvalidInput(f"baseline must be one or a list of {', '.join(BASELINES)}; got {given!r}")
    if len(set(chosen)) != len(chosen):
        raise InvalidInput(f"baseline names a comparison twice: {given!r}")
    return list(chosen)


def replaced(window: MonitorWindow, history: Sequence[MonitorWindow]) -> tuple[MonitorWindow | None, str, int] | None:
    """The version `window`'s version replaced, as (its latest window with realised metrics or None, model,
    version); None when the same version served every earlier window."""
    if window.model is None or window.version is None:
        return None
    earlier = [w for w in history if w.start_time < window.start_time and w.model is not None]
    earlier.sort(key=lambda w: w.start_time)
    current = (window.model, window.version)
    i = len(earlier) - 1
    while i >= 0 and (earlier[i].model, earlier[i].version) == current:
        i -= 1
    if i < 0:
        return None
    model, version = str(earlier[i].model), int(earlier[i].version or 0)
    while i >= 0 and (earlier[i].model, earlier[i].version) == (model, version):
        metrics = (earlier[i].performance or {}).get("metrics")
        if metrics:
            return earlier[i], model, version
        i -= 1
    return None, model, version


def version_changes(windows: Sequence[MonitorWindow]) -> dict[int, tuple[str, int]]:
    """The windows (by start time) whose serving version differs from the window before, with that version."""
    changes: dict[int, tuple[str, int]] = {}
    last: tuple[str, int] | None = None
    for window in windows:
        if window.model is None or window.version is None:
            continue
        current = (window.model, window.version)
        if last is not None and current != last:
            changes[window.start_time] = current
        last = current
    return changes
