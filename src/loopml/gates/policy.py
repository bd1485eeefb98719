"""Gate policies: the YAML a person edits and reviews in a pull request, parsed into checks with their lines.

    champion: champion                  # the alias relative checks compare with (default: champion)
    metrics:
      - rmse <= 110                     # absolute threshold
      - rmse <= champion * 1.02         # relative to the champion on the same evaluation rows
      - r2 >= champion - 0.01
    fairness:                           # per sensitive attribute (a column of the evaluation data)
      sex:
        - demographic_parity_ratio >= 0.8
        - equalized_odds_difference <= 0.1
    contract: bike-demand               # the data contract of this deployment's serving version must pass
    signature: bike-demand              # no input removed or retyped versus that deployment's version
    latency:
      p99_ms: 50                        # p99 of one-row predictions of the packaged model
      rows: 200                         # how many rows of the evaluation data are timed (default 200)
    package:
      max_mb: 100                       # the package's files, in MB (10^6 bytes)

Every error names the line: `gate policy line 4: ...`.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from loopml.domain.validation import check_alias
from loopml.errors import InvalidInput, InvalidPolicy
from loopml.evaluation import METRICS

__all__ = ["FAIRNESS_METRICS", "MAX_POLICY_BYTES", "Policy", "Rule", "parse_policy"]

MAX_POLICY_BYTES = 64 * 1024
FAIRNESS_METRICS = {
    "demographic_parity_ratio": "binary",
    "demographic_parity_difference": "binary",
    "equalized_odds_difference": "binary",
    "group_error_ratio": "regression",
}
"""Fairness metrics and the task they apply to (classifiers' metrics need a binary task)."""
KNOWN_METRICS = frozenset(m for names in METRICS.values() for m in names)
_OPERATORS = ("<=", ">=", "<", ">", "==")
_RULE = re.compile(r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op><=|>=|==|<|>)\s*(?P<rhs>.+?)\s*$")
_RELATIVE = re.compile(r"^champion\s*(?:(?P<op>[*+-])\s*(?P<value>[^\s].*))?$")
_TOP = {"champion", "metrics", "fairness", "contract", "signature", "latency", "package"}


@dataclass(frozen=True)
class Rule:
    """`metric op threshold`, where threshold is a number or `champion [*|+|-] number`."""

    text: str
    metric: str
    op: str
    value: float
    relative: str | None
    """None (absolute), `*`, `+` or `-` (champion's value times, plus or minus `value`)."""
    line: int

    def threshold(self, champion: float | None) -> float:
        if self.relative is None:
            return self.value
        assert champion is not None
        if self.relative == "*":
            return champion * self.value
        return champion + self.value if self.relative == "+" else champion - self.value

    def holds(self, observed: float, threshold: float) -> bool:
        if math.isnan(observed) or math.isnan(threshold):
            return False
        return {
            "<=": observed <= threshold,
            ">=": observed >= threshold,
            "<": observed < threshold,
            ">": observed > threshold,
            "==": observed == threshold,
        }[self.op]


@dataclass(frozen=True)
class Policy:
    text: str
    digest: str
    champion: str
    metrics: tuple[Rule, ...]
    fairness: tuple[tuple[str, Rule], ...]
    contract: tuple[str, int] | None
    signature: tuple[str, int] | None
    latency: tuple[float, int, int] | None
    """(p99 limit in ms, rows timed, line)."""
    package: tuple[float, int] | None
    """(limit in MB, line)."""

    @property
    def needs_champion(self) -> bool:
        return any(r.relative is not None for r in self.metrics)

    @property
    def needs_data(self) -> bool:
        return bool(self.fairness) or self.contract is not None or self.latency is not None


class _Bad(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _scalar(node: yaml.Node, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise _Bad(
            _line(node),
            f"{what} must be a single value, got a {'list' if isinstance(node, yaml.SequenceNode) else 'mapping'}",
        )
    return str(node.value)


def _number(node: yaml.Node, what: str, positive: bool = True) -> float:
    text = _scalar(node, what)
    try:
        if node.tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
            raise ValueError
        value = float(yaml.safe_load(text))
    except (ValueError, TypeError, yaml.YAMLError):
        raise _Bad(_line(node), f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise _Bad(_line(node), f"{what} must be a {'positive ' if positive else ''}finite number, got {text}")
    return value


def _rule(node: yaml.Node, known: frozenset[str] | dict[str, str], what: str) -> Rule:
    line = _line(node)
    text = _scalar(node, what)
    found = _RULE.match(text)
    if found is None:
        raise _Bad(line, f"{what} {text!r} is not `metric <op> threshold` with <op> one of {' '.join(_OPERATORS)}")
    metric, op, rhs = found["metric"], found["op"], found["rhs"]
    if metric not in known:
        raise _Bad(line, f"unknown metric {metric!r}; known: {', '.join(sorted(known))}")
    relative = _RELATIVE.match(rhs)
    if relative is not None:
        if relative["op"] is None:
            return Rule(text, metric, op, 1.0, "*", line)
        value = _float(relative["value"], line, f"the factor in {text!r}")
        return Rule(text, metric, op, value, relative["op"], line)
    return Rule(text, metric, op, _float(rhs, line, f"the threshold of {text!r}"), None, line)


def _float(text: str, line: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Bad(
            line, f"{what} must be a number or `champion`, `champion * x`, `champion + x`, `champion - x`; got {text!r}"
        ) from None
    if not math.isfinite(value):
        raise _Bad(line, f"{what} must be finite, got {text!r}")
    return value


def _sequence(node: yaml.Node, what: str) -> list[yaml.Node]:
    if not isinstance(node, yaml.SequenceNode):
        raise _Bad(_line(node), f"{what} must be a list of checks (`- rmse <= 110`)")
    return list(node.value)


def _mapping(node: yaml.Node, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise _Bad(_line(node), f"{what} must be a mapping")
    return list(node.value)


def _keys(pairs: list[tuple[yaml.Node, yaml.Node]], allowed: set[str], what: str) -> dict[str, yaml.Node]:
    found: dict[str, yaml.Node] = {}
    for key, value in pairs:
        name = _scalar(key, "a key")
        if name not in allowed:
            raise _Bad(_line(key), f"unknown field {name!r} in {what}; expected one of {', '.join(sorted(allowed))}")
        if name in found:
            raise _Bad(_line(key), f"{name!r} is given twice in {what}")
        found[name] = value
    return found


def parse_policy(text: str, source: str = "gate policy") -> Policy:
    """The policy in `text`; `InvalidInput` naming the line for anything it cannot take."""
    if not isinstance(text, str):
        raise InvalidPolicy(f"{source}: the policy must be YAML text")
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise InvalidPolicy(f"{source}: the policy is over {MAX_POLICY_BYTES} bytes")
    try:
        return _parse(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise InvalidPolicy(f"{source} line {line}: not valid YAML ({exc.problem or exc})") from None
    except yaml.YAMLError as exc:
        raise InvalidPolicy(f"{source}: not valid YAML ({exc})") from None
    except _Bad as bad:
        raise InvalidPolicy(f"{source} line {bad.line}: {bad.message}") from None


def _parse(text: str) -> Policy:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        raise _Bad(
            1, "the policy is empty; give at least one of metrics, fairness, contract, signature, latency, package"
        )
    top = _keys(_mapping(root, "the policy"), _TOP, "the policy")
    champion = "champion"
    if "champion" in top:
        champion = _scalar(top["champion"], "champion")
        try:
            check_alias(champion)
        except InvalidInput as exc:
            raise _Bad(_line(top["champion"]), str(exc)) from None
    metrics = (
        tuple(_rule(node, KNOWN_METRICS, "a metric check") for node in _sequence(top["metrics"], "metrics"))
        if "metrics" in top
        else ()
    )
    fairness: list[tuple[str, Rule]] = []
    if "fairness" in top:
        for key, value in _mapping(top["fairness"], "fairness (attribute -> checks)"):
            attribute = _scalar(key, "an attribute")
            for node in _sequence(value, f"fairness of {attribute!r}"):
                rule = _rule(node, FAIRNESS_METRICS, f"a fairness check of {attribute!r}")
                if rule.relative is not None:
                    raise _Bad(rule.line, "fairness checks take absolute thresholds, not champion")
                fairness.append((attribute, rule))
    contract = (_scalar(top["contract"], "contract"), _line(top["contract"])) if "contract" in top else None
    signature = (_scalar(top["signature"], "signature"), _line(top["signature"])) if "signature" in top else None
    latency = None
    if "latency" in top:
        fields = _keys(_mapping(top["latency"], "latency"), {"p99_ms", "rows"}, "latency")
        if "p99_ms" not in fields:
            raise _Bad(_line(top["latency"]), "latency needs p99_ms (the limit in milliseconds)")
        rows = int(_number(fields["rows"], "latency.rows")) if "rows" in fields else 200
        if not 1 <= rows <= 10_000:
            raise _Bad(_line(fields["rows"]), f"latency.rows must be from 1 to 10000, got {rows}")
        latency = (_number(fields["p99_ms"], "latency.p99_ms"), rows, _line(fields["p99_ms"]))
    package = None
    if "package" in top:
        fields = _keys(_mapping(top["package"], "package"), {"max_mb"}, "package")
        if "max_mb" not in fields:
            raise _Bad(_line(top["package"]), "package needs max_mb (the limit in MB)")
        package = (_number(fields["max_mb"], "package.max_mb"), _line(fields["max_mb"]))
    for name, found in (("contract", contract), ("signature", signature)):
        if found is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,249}", found[0]):
            raise _Bad(found[1], f"{name} must name a deployment, got {found[0]!r}")
    if not (metrics or fairness or contract or signature or latency or package):
        raise _Bad(
            1, "the policy has no checks; give at least one of metrics, fairness, contract, signature, latency, package"
        )
    return Policy(
        text=text,
        digest=hashlib.sha256(text.encode()).hexdigest(),
        champion=champion,
        metrics=metrics,
        fairness=tuple(fairness),
        contract=contract,
        signature=signature,
        latency=latency,
        package=package,
    )


def describe(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
