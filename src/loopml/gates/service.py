"""`GateService`: judge a model version against a gate policy, keep the result, and guard aliases with it.

The measurements that need the evaluation rows (fairness, the deployment's contract on the rows, latency) are
taken where the data is (`check` in this process, or the SDK/CLI before `check_gate`); the verdict of every
check is computed here, from the stored evaluation, the registry and those measurements.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from loopml.domain import ModelVersion, Principal, Role
from loopml.domain.evaluation import CheckStatus, Evaluation, GateCheck, GateResult
from loopml.domain.validation import check_alias
from loopml.errors import (
    AliasNotFound,
    DeploymentNotFound,
    InvalidInput,
    InvalidPolicy,
    NotFound,
)
from loopml.evaluation import EvaluationService
from loopml.gates.measurements import ContractSource, measure
from loopml.gates.policy import FAIRNESS_METRICS, Policy, Rule, parse_policy
from loopml.store import MetadataStore, Unit
from loopml.store.audit import now_ms
from loopml.store.registered_models import ModelRow

__all__ = ["GateService", "judge_signature"]

MAX_MEASUREMENT_BYTES = 256 * 1024
_ID = re.compile(r"^[0-9a-f]{32}$")


def _check(
    rule: Rule, kind: str, observed: float | None, threshold: float | None, detail: str = "", name: str | None = None
) -> GateCheck:
    if observed is None or threshold is None:
        return GateCheck(name or rule.text, kind, "error", observed, threshold, detail, rule.line)
    passed = rule.holds(observed, threshold)
    return GateCheck(name or rule.text, kind, "pass" if passed else "fail", observed, threshold, detail, rule.line)


def judge_signature(candidate: Mapping[str, Any] | None, serving: Mapping[str, Any] | None) -> list[str]:
    """How `candidate`'s inputs break callers of a version with signature `serving`: inputs removed or retyped
    (new inputs that may be null are fine; a new required input breaks every caller)."""
    if serving is None:
        return []
    if candidate is None:
        return ["the candidate has no signature, the deployed version has one"]
    old = {c["name"]: c for c in serving.get("inputs") or []}
    new = {c["name"]: c for c in candidate.get("inputs") or []}
    problems = [f"input {name!r} removed" for name in old if name not in new]
    problems += [
        f"input {name!r} retyped {old[name]['dtype']} -> {new[name]['dtype']}"
        for name in old
        if name in new and new[name]["dtype"] != old[name]["dtype"]
    ]
    problems += [f"new required input {name!r}" for name in new if name not in old and not new[name].get("nullable")]
    return problems


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _check_measurements(measurements: object) -> dict[str, Any]:
    if measurements is None:
        return {}
    if not isinstance(measurements, Mapping):
        raise InvalidInput("measurements must be a JSON object (see docs/gates.md)")
    import orjson

    if len(orjson.dumps(dict(measurements))) > MAX_MEASUREMENT_BYTES:
        raise InvalidInput(f"measurements are over {MAX_MEASUREMENT_BYTES} bytes as JSON")
    allowed = {"rows", "fairness", "contract", "latency", "errors"}
    unknown = sorted(set(measurements) - allowed)
    if unknown:
        raise InvalidInput(f"unknown measurements {unknown}; expected some of {sorted(allowed)}")
    for key in ("fairness", "contract", "latency", "errors"):
        if key in measurements and not isinstance(measurements[key], Mapping):
            raise InvalidInput(f"measurements.{key} must be an object")
    return dict(measurements)


class GateService:
    """Gate results of model versions and the aliases that require a passed gate. Viewers read; editors check
    and require; dropping a requirement, or moving a guarded alias past a failed gate, takes an admin."""

    def __init__(
        self, store: MetadataStore, evaluations: EvaluationService, contracts: ContractSource | None = None
    ) -> None:
        self.store = store
        self.evaluations = evaluations
        self.registry = evaluations.registry
        self.contracts = contracts

    @staticmethod
    def _model(unit: Unit, principal: Principal, name: str) -> ModelRow:
        return EvaluationService._model(unit, principal, name)

    # -- checking in this process ----------------------------------------------------------------

    def check(
        self,
        principal: Principal,
        model: str,
        policy: str | Policy,
        evaluation: str | None = None,
        data: Any = None,
        label: str | None = None,
        task: str | None = None,
        slices: Sequence[str] = (),
    ) -> GateResult:
        """Judge the version `model` names against `policy` (YAML text or a parsed `Policy`) and store the result.

        With `data` and `label` the version is evaluated first (against the champion when the policy has
        relative checks) and the fairness, contract and latency checks are measured on those rows; without,
        the evaluation `evaluation` (an id) or the version's newest evaluation is judged.
        """
        principal.require(Role.EDITOR)
        parsed = policy if isinstance(policy, Policy) else parse_policy(policy)
        version = self.registry.resolve(principal, model)
        measurements: dict[str, Any] = {}
        if data is not None:
            if label is None:
                raise InvalidInput("evaluation data needs the label column (label=...)")
            baseline = self._champion_reference(principal, version, parsed)
            scored = self.evaluations.score(principal, version.uri, data, label, task, slices, baseline)
            evaluation = self.evaluations.record_evaluation(principal, **scored.fields).id
            measurements = measure(parsed, scored, self.evaluations._load(version), self.contracts)
        return self.check_gate(principal, version.name, version.version, parsed.text, evaluation, measurements)

    def _champion_reference(self, principal: Principal, version: ModelVersion, policy: Policy) -> str | None:
        if not policy.needs_champion:
            return None
        line = next(r.line for r in policy.metrics if r.relative is not None)
        try:
            self.registry.resolve(principal, f"models:/{version.name}@{policy.champion}")
        except AliasNotFound:
            raise InvalidPolicy(
                f"gate policy line {line}: model {version.name!r} has no alias {policy.champion!r} to compare with "
                "(a first model has no champion: drop the relative checks, or set the alias)"
            ) from None
        return f"@{policy.champion}"

    # -- judging (the check_gate operation) --------------------------------------------------------

    def check_gate(
        self,
        principal: Principal,
        name: str,
        version: int,
        policy: str,
        evaluation_id: str | None = None,
        measurements: Mapping[str, Any] | None = None,
    ) -> GateResult:
        """Judge version `version` of model `name` against the YAML `policy`: metric checks on the evaluation
        `evaluation_id` (default: the version's newest), the rest on `measurements`; stored and audited as
        `model.gate`."""
        principal.require(Role.EDITOR)
        parsed = parse_policy(policy)
        measured = _check_measurements(measurements)
        if evaluation_id is not None and (not isinstance(evaluation_id, str) or not _ID.match(evaluation_id)):
            raise NotFound(f"evaluation {evaluation_id!r} does not exist")
        with self.store.write(principal.actor) as unit:
            model = self._model(unit, principal, name)
            target = unit.model_versions.get(model, version)
            evaluation = self._evaluation(unit, model, target, evaluation_id, parsed)
            checks = [*self._metric_checks(unit, model, parsed, evaluation)]
            checks += self._fairness_checks(parsed, measured, evaluation)
            checks += self._deployment_checks(unit, principal, parsed, target, measured)
            checks += self._package_checks(unit, parsed, target)
            result = GateResult(
                id=uuid.uuid4().hex,
                name=model.name,
                version=target.version,
                project=model.project,
                passed=all(c.status == "pass" for c in checks),
                policy_digest=parsed.digest,
                policy=parsed.text,
                evaluation_id=None if evaluation is None else evaluation.id,
                checks=tuple(checks),
                created_at=now_ms(),
                created_by=principal.actor,
            )
            unit.evaluations.add_gate_result(model, target.manifest_digest, result)
            return result

    def _evaluation(
        self, unit: Unit, model: ModelRow, target: ModelVersion, evaluation_id: str | None, policy: Policy
    ) -> Evaluation | None:
        if evaluation_id is not None:
            model_id, digest, found = unit.evaluations.get(evaluation_id)
            if model_id != model.id or found.version != target.version or digest != target.manifest_digest:
                raise InvalidInput(f"evaluation {evaluation_id} is not an evaluation of {model.name}/{target.version}")
            return found
        if not (policy.metrics or policy.fairness):
            return None
        newest = unit.evaluations.list(model, target.version, target.manifest_digest, 1)
        return newest[0] if newest else None

    def _metric_checks(
        self, unit: Unit, model: ModelRow, policy: Policy, evaluation: Evaluation | None
    ) -> list[GateCheck]:
        checks = []
        champion: int | None = None
        if policy.needs_champion:
            line = next(r.line for r in policy.metrics if r.relative is not None)
            try:
                champion = unit.model_versions.alias(model, policy.champion)
            except AliasNotFound:
                raise InvalidPolicy(
                    f"gate policy line {line}: model {model.name!r} has no alias {policy.champion!r} to compare with "
                    "(a first model has no champion: drop the relative checks, or set the alias)"
                ) from None
        for rule in policy.metrics:
            if evaluation is None:
                checks.append(
                    _check(
                        rule,
                        "metric",
                        None,
                        None,
                        "no evaluation of this version: run `loopml evaluate` or give --data",
                    )
                )
                continue
            observed = evaluation.metrics.get(rule.metric)
            if observed is None:
                detail = f"the {evaluation.task} evaluation has no metric {rule.metric!r}"
                checks.append(_check(rule, "metric", None, None, detail))
                continue
            if rule.relative is None:
                checks.append(_check(rule, "metric", observed, rule.threshold(None), f"evaluation {evaluation.id[:8]}"))
                continue
            if evaluation.baseline_version != champion:
                baseline = evaluation.baseline_version
                compared_with = "no baseline" if baseline is None else f"version {baseline}"
                raise InvalidPolicy(
                    f"gate policy line {rule.line}: evaluation {evaluation.id} compared with {compared_with}, "
                    f"but {policy.champion} is version {champion}: evaluate with --baseline @{policy.champion}"
                )
            compared = next((c for c in evaluation.comparison if c.metric == rule.metric), None)
            if compared is None or math.isnan(compared.baseline):
                checks.append(
                    _check(rule, "champion", observed, None, f"{policy.champion} has no {rule.metric} on these rows")
                )
                continue
            detail = (
                f"{policy.champion} v{champion}: {compared.baseline:.6g}; difference {compared.difference:+.6g} "
                f"[{compared.low:+.6g}, {compared.high:+.6g}] (95% bootstrap)"
            )
            checks.append(_check(rule, "champion", observed, rule.threshold(compared.baseline), detail))
        return checks

    def _fairness_checks(
        self, policy: Policy, measured: Mapping[str, Any], evaluation: Evaluation | None
    ) -> list[GateCheck]:
        checks = []
        fairness = measured.get("fairness") or {}
        errors = measured.get("errors") or {}
        for attribute, rule in policy.fairness:
            name = f"{attribute}: {rule.text}"
            values = fairness.get(attribute)
            if not isinstance(values, Mapping):
                detail = str(
                    errors.get(f"fairness:{attribute}") or "not measured: gate with the evaluation data (--data)"
                )
                checks.append(_check(rule, "fairness", None, None, detail, name))
                continue
            observed = _number(values.get(rule.metric))
            detail = ""
            if observed is None:
                task = evaluation.task if evaluation is not None else "this"
                detail = f"{rule.metric} applies to {FAIRNESS_METRICS[rule.metric]} models, not to a {task} task"
            checks.append(_check(rule, "fairness", observed, rule.value, detail, name))
        return checks

    def _deployment_checks(
        self, unit: Unit, principal: Principal, policy: Policy, target: ModelVersion, measured: Mapping[str, Any]
    ) -> list[GateCheck]:
        checks = []
        errors = measured.get("errors") or {}
        if policy.contract is not None:
            deployment, line = policy.contract
            name = f"contract of {deployment}"
            found = measured.get("contract")
            if not isinstance(found, Mapping) or found.get("deployment") != deployment:
                detail = str(errors.get("contract") or "not measured: gate with the evaluation data (--data)")
                checks.append(GateCheck(name, "contract", "error", detail=detail, line=line))
            else:
                blocking = found.get("blocking") or []
                rows = measured.get("rows")
                detail = (
                    "; ".join(
                        f"{b.get('column') or 'table'}: {b.get('check')} ({b.get('message')})"
                        for b in blocking[:5]
                        if isinstance(b, Mapping)
                    )
                    or f"all blocking checks of {found.get('version')} pass on {rows} rows"
                )
                status: CheckStatus = "pass" if not blocking else "fail"
                checks.append(GateCheck(name, "contract", status, float(len(blocking)), 0.0, detail, line))
        if policy.signature is not None:
            deployment, line = policy.signature
            name = f"signature compatible with {deployment}"
            serving = self._serving_version(unit, principal, deployment)
            if serving is None:
                checks.append(
                    GateCheck(name, "signature", "error", detail=f"deployment {deployment!r} does not exist", line=line)
                )
            else:
                problems = judge_signature(target.signature, serving.signature)
                detail = "; ".join(problems) or f"every input of {serving.name}/{serving.version} is kept with its type"
                checks.append(
                    GateCheck(
                        name, "signature", "fail" if problems else "pass", float(len(problems)), 0.0, detail, line
                    )
                )
        if policy.latency is not None:
            limit, _, line = policy.latency
            name = f"latency p99 <= {limit:g} ms"
            found = measured.get("latency")
            observed = _number(found.get("p99_ms")) if isinstance(found, Mapping) else None
            if observed is None:
                detail = str(errors.get("latency") or "not measured: gate with the evaluation data (--data)")
                checks.append(GateCheck(name, "latency", "error", None, limit, detail, line))
            else:
                rows = _number(found.get("rows")) if isinstance(found, Mapping) else None
                status = "pass" if observed <= limit else "fail"
                detail = f"one-row predictions of {int(rows or 0)} rows"
                checks.append(GateCheck(name, "latency", status, observed, limit, detail, line))
        return checks

    def _serving_version(self, unit: Unit, principal: Principal, deployment: str) -> ModelVersion | None:
        try:
            found = unit.deployments.get(deployment)
        except DeploymentNotFound:
            return None
        if not principal.can_see(found.project) or found.stable is None:
            return None
        stable = found.stable
        model = unit.models.find(stable.model)
        if model is None:
            return None
        return unit.model_versions.get(model, stable.version)

    def _package_checks(self, unit: Unit, policy: Policy, target: ModelVersion) -> list[GateCheck]:
        if policy.package is None:
            return []
        limit, line = policy.package
        records = unit.artifacts.list(target.run_id, f"{target.artifact_path}/")
        size_mb = sum(r.size for r in records) / 1e6
        status: CheckStatus = "pass" if size_mb <= limit else "fail"
        detail = f"{len(records)} files of the package"
        return [GateCheck(f"package <= {limit:g} MB", "package", status, size_mb, limit, detail, line)]

    # -- reading -------------------------------------------------------------------------------------

    def get_gate_result(self, principal: Principal, result_id: str) -> GateResult:
        if not isinstance(result_id, str) or not _ID.match(result_id):
            raise NotFound(f"gate result {result_id!r} does not exist")
        with self.store.read() as unit:
            model_id, result = unit.evaluations.get_gate_result(result_id)
            if not principal.can_see(result.project):
                raise NotFound(f"gate result {result_id!r} does not exist")
            found = unit.models.get_many([model_id])
        from dataclasses import replace

        return replace(result, name=found[0].name if found else "(deleted)")

    def list_gate_results(
        self, principal: Principal, name: str, version: int | None = None, max_results: int = 100
    ) -> list[GateResult]:
        """The gate results of a model (or one version), newest first: the first of a version is its status."""
        if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= 1000:
            raise InvalidInput(f"max_results must be an integer from 1 to 1000, got {max_results!r}")
        with self.store.read() as unit:
            model = self._model(unit, principal, name)
            digest = unit.model_versions.get(model, version).manifest_digest if version is not None else None
            return unit.evaluations.gate_results(model, version, digest, max_results)

    # -- aliases that need a passed gate ---------------------------------------------------------------

    def require_gate(self, principal: Principal, name: str, alias: str, required: bool = True) -> list[str]:
        """Make `alias` of model `name` require a passed gate (editors), or drop that requirement (admins).
        Returns the model's guarded aliases."""
        principal.require(Role.EDITOR if required else Role.ADMIN)
        check_alias(alias)
        if not isinstance(required, bool):
            raise InvalidInput(f"required must be true or false, got {required!r}")
        with self.store.write(principal.actor) as unit:
            model = self._model(unit, principal, name)
            unit.models.lock(model.name)
            unit.evaluations.require_gate(model, alias, required)
            return unit.evaluations.required_aliases(model)

    def gate_requirements(self, principal: Principal, name: str) -> list[str]:
        """The aliases of model `name` that only move to a version whose newest gate passed."""
        with self.store.read() as unit:
            return unit.evaluations.required_aliases(self._model(unit, principal, name))
