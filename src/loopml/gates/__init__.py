"""Gates: YAML policies (thresholds, relative to the champion, fairness, contract, signature, latency,
package size), `GateService` that judges a version and stores the result, and the guard of aliases that
require a passed gate.

A service package: imports ports, the domain and other services' public modules (evaluation, registry, data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_attributes

if TYPE_CHECKING:
    from loopml.gates.fairness import fairness_metrics
    from loopml.gates.measurements import CONTRACT_FILE, ContractSource, measure
    from loopml.gates.policy import FAIRNESS_METRICS, Policy, Rule, parse_policy
    from loopml.gates.report import render_json, render_markdown, render_table
    from loopml.gates.service import GateService, judge_signature

__all__ = [
    "CONTRACT_FILE",
    "FAIRNESS_METRICS",
    "ContractSource",
    "GateService",
    "Policy",
    "Rule",
    "fairness_metrics",
    "judge_signature",
    "measure",
    "parse_policy",
    "render_json",
    "render_markdown",
    "render_table",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        "fairness_metrics": "loopml.gates.fairness",
        "CONTRACT_FILE": "loopml.gates.measurements",
        "ContractSource": "loopml.gates.measurements",
        "measure": "loopml.gates.measurements",
        "FAIRNESS_METRICS": "loopml.gates.policy",
        "Policy": "loopml.gates.policy",
        "Rule": "loopml.gates.policy",
        "parse_policy": "loopml.gates.policy",
        "render_json": "loopml.gates.report",
        "render_markdown": "loopml.gates.report",
        "render_table": "loopml.gates.report",
        "GateService": "loopml.gates.service",
        "judge_signature": "loopml.gates.service",
    },
)
