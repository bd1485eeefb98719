"""The gate a retraining loop passes before rollout: a YAML policy of checks on the challenger's metrics,
absolute (`rmse <= 110`) or relative to the champion (`rmse <= champion * 1.02`).

This is the loop's one seam to gating (`gate_challenger`): it reads the metrics each version was registered
with (the pipeline's evaluation on the fresh data it was given). When `loopml.gates` lands it evaluates both
versions on the same labelled rows instead, behind the same function.

    checks:
      - rmse <= 110
      - rmse <= champion * 1.02
      - r2 >= 0.5
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import InvalidInput

__all__ = ["GateCheck", "GateOutcome", "gate_challenger", "parse_gate"]

_CHECK = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w.]*)\s*(?P<op><=|>=|<|>)\s*"
    r"(?:(?P<champion>champion)\s*(?:\*\s*(?P<factor>[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?))?|"
    r"(?P<value>[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?))\s*$"
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_PREFIXES = ("", "val_", "validation_", "test_", "eval_")


@dataclass(frozen=True, slots=True)
class GateCheck:
    metric: str
    op: str
    value: float | None
    """The absolute threshold; None when relative to the champion."""
    factor: float | None
    line: int
    text: str


@dataclass(frozen=True, slots=True)
class GateOutcome:
    passed: bool
    reason: str
    checks: list[dict[str, Any]] = field(default_factory=list)


def parse_gate(text: str | None) -> tuple[GateCheck, ...]:
    """The checks of a gate policy; InvalidInput naming the line of anything malformed."""
    if text is None:
        return ()
    import yaml

    if not isinstance(text, str) or len(text) > 100_000:
        raise InvalidInput("the gate policy must be YAML text of at most 100,000 characters")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"the gate policy is not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    if root is None or not isinstance(root, yaml.MappingNode):
        raise InvalidInput("the gate policy must be a mapping with a `checks` list, e.g. `checks: [rmse <= 110]`")
    checks_node = None
    for key, value in root.value:
        if key.value != "checks":
            raise InvalidInput(f"line {key.start_mark.line + 1}: unknown gate policy key {key.value!r}; use `checks`")
        checks_node = value
    if not isinstance(checks_node, yaml.SequenceNode) or not checks_node.value:
        raise InvalidInput("the gate policy's `checks` must be a non-empty list, e.g. `checks: [rmse <= 110]`")
    found = []
    for item in checks_node.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.ScalarNode) or not isinstance(item.value, str):
            raise InvalidInput(f"line {line}: a check is a line of text such as `rmse <= champion * 1.02`")
        match = _CHECK.match(item.value)
        if match is None:
            raise InvalidInput(
                f"line {line}: cannot read check {item.value!r}; write METRIC OP NUMBER or METRIC OP champion * "
                "FACTOR with OP one of <=, >=, <, > (e.g. `rmse <= 110`, `rmse <= champion * 1.02`)"
            )
        value = None if match["value"] is None else float(match["value"])
        factor = None if match["champion"] is None else float(match["factor"] or 1.0)
        found.append(GateCheck(match["metric"], match["op"], value, factor, line, item.value))
    return tuple(found)


def _metric(metrics: Mapping[str, float], name: str) -> float | None:
    for prefix in _PREFIXES:
        value = metrics.get(prefix + name)
        if value is not None and math.isfinite(value):
            return float(value)
    return None


def gate_challenger(
    text: str | None, challenger: Mapping[str, float], champion: Mapping[str, float] | None
) -> GateOutcome:
    """Judge a challenger's metrics against the gate policy `text` (and the champion's metrics)."""
    checks = parse_gate(text)
    if not checks:
        return GateOutcome(True, "no gate policy: passed without checks")
    results, failed = [], []
    for check in checks:
        mine = _metric(challenger, check.metric)
        if check.factor is not None:
            theirs = None if champion is None else _metric(champion, check.metric)
            limit = None if theirs is None else theirs * check.factor
        else:
            theirs, limit = None, check.value
        row: dict[str, Any] = {"check": check.text, "line": check.line, "value": mine, "limit": limit}
        if mine is None:
            row["passed"], row["why"] = False, f"the challenger has no metric {check.metric!r}"
        elif limit is None:
            row["passed"] = False
            row["why"] = (
                "there is no champion to compare with"
                if champion is None
                else f"the champion has no metric {check.metric!r}"
            )
        else:
            row["passed"] = _OPS[check.op](mine, limit)
        results.append(row)
        if not row["passed"]:
            failed.append(row.get("why") or f"{check.text}: {mine:g} vs {limit:g}")
    if failed:
        return GateOutcome(False, "gate failed: " + "; ".join(failed), results)
    return GateOutcome(True, f"gate passed: {len(results)} check(s)", results)
