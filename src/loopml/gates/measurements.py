"""What a gate measures where the evaluation data is: fairness per attribute, the deployment's data contract
on the rows, and the latency of one-row predictions. The server judges these numbers against the policy.

The measurements travel as plain JSON (`measurements` of the `check_gate` operation):

    {"rows": 17379,
     "fairness": {"sex": {"demographic_parity_ratio": 0.91, ...}},
     "errors": {"fairness:race": "no column 'race' in the evaluation data"},
     "contract": {"deployment": "bike", "version": "bike/3", "blocking": [{"check": "range", ...}], "warnings": 0},
     "latency": {"p99_ms": 1.8, "rows": 200}}
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from loopml.data import Contract, validate_batch
from loopml.errors import InvalidInput, LoopmlError
from loopml.evaluation import Scored
from loopml.gates.fairness import fairness_metrics
from loopml.gates.policy import Policy

__all__ = ["CONTRACT_FILE", "ContractSource", "measure"]

CONTRACT_FILE = "contract.yaml"
"""The data contract inside a model package (what serving checks every request against)."""

ContractSource = Callable[[str], tuple[str, Contract | None]]
"""deployment name -> (label of the version it serves, that version's data contract or None)."""


def measure(policy: Policy, scored: Scored, model: Any, contracts: ContractSource | None) -> dict[str, Any]:
    """The measurements `policy` needs, on the rows `scored` was computed on."""
    found: dict[str, Any] = {"rows": len(scored.frame)}
    errors: dict[str, str] = {}
    fairness: dict[str, dict[str, float]] = {}
    for attribute in dict.fromkeys(attribute for attribute, _ in policy.fairness):
        if attribute not in scored.frame.columns:
            errors[f"fairness:{attribute}"] = f"no column {attribute!r} in the evaluation data"
            continue
        try:
            fairness[attribute] = fairness_metrics(scored.scores.outcomes, scored.frame[attribute])
        except InvalidInput as exc:
            errors[f"fairness:{attribute}"] = str(exc)
    if fairness:
        found["fairness"] = fairness
    if policy.contract is not None:
        deployment = policy.contract[0]
        try:
            if contracts is None:
                raise InvalidInput("no way to read deployments' contracts here")
            label, contract = contracts(deployment)
            if contract is None:
                errors["contract"] = f"{label}, served by deployment {deployment!r}, has no data contract"
            else:
                report = validate_batch(scored.frame, contract)
                found["contract"] = {
                    "deployment": deployment,
                    "version": label,
                    "blocking": [r.to_dict() for r in report.blocking][:20],
                    "warnings": len(report.warnings),
                }
        except LoopmlError as exc:
            errors["contract"] = str(exc)
    if policy.latency is not None:
        try:
            found["latency"] = _latency(model, scored, policy.latency[1])
        except LoopmlError as exc:
            errors["latency"] = str(exc)
    if errors:
        found["errors"] = errors
    return found


def _latency(model: Any, scored: Scored, rows: int) -> dict[str, float]:
    """p99 over one-row predictions of up to `rows` rows spread evenly over the data (after 3 warm-up calls)."""
    label = scored.fields["label"]
    features = scored.frame.drop(columns=[label])
    picked = np.unique(np.linspace(0, len(features) - 1, min(rows, len(features))).astype(int))
    single = [features.iloc[[i]] for i in picked]
    for row in single[:3]:
        model.predict(row)
    timings = []
    for row in single:
        started = time.perf_counter()
        model.predict(row)
        timings.append((time.perf_counter() - started) * 1000.0)
    return {"p99_ms": float(np.percentile(timings, 99)), "rows": float(len(timings))}
