"""Gates (`client.gates`, `lm.gate`, `loopml gate`): judge a version against a YAML policy."""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.api import evaluation as ops
from loopml.domain.evaluation import GateResult
from loopml.errors import InvalidInput, InvalidPolicy, NotFound

if TYPE_CHECKING:
    from loopml.client.client import Client
    from loopml.data import Contract


def policy_text(policy: str | os.PathLike[str]) -> str:
    """The YAML of `policy`: a path to a .yaml/.yml file, or the YAML itself."""
    if isinstance(policy, os.PathLike) or (
        isinstance(policy, str) and "\n" not in policy and policy.endswith((".yaml", ".yml"))
    ):
        path = Path(policy)
        if not path.is_file():
            raise InvalidPolicy(f"gate policy {str(path)!r}: no such file")
        return path.read_text()
    if not isinstance(policy, str):
        raise InvalidPolicy(f"a gate policy is YAML text or a path, not {type(policy).__name__}")
    return policy


class Gates:
    """Judge versions against gate policies and guard aliases with the results.

    result = client.gates.check("models:/bike-demand@challenger", "gates/bike.yaml", data="eval.parquet",
                                label="cnt")
    result.passed, [(c.name, c.status, c.observed) for c in result.checks]
    client.gates.require("bike-demand", "champion")   # champion then only moves to a version that passed
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._backend = client.backend

    def _contract(self, deployment: str) -> tuple[str, Contract | None]:
        from loopml.data import Contract
        from loopml.gates import CONTRACT_FILE

        found = self._client.deployments.status(deployment)
        if found.stable is None:
            raise NotFound(f"deployment {deployment!r} serves no stable version")
        label = f"{found.stable.model}/{found.stable.version}"
        directory = self._client.models.download(f"models:/{label}")
        path = directory / CONTRACT_FILE
        if not path.is_file():
            return label, None
        return label, Contract.from_yaml(path.read_text(), source=f"{label}: {CONTRACT_FILE}")

    def check(
        self,
        model: str,
        policy: str | os.PathLike[str],
        *,
        data: Any = None,
        label: str | None = None,
        task: str | None = None,
        slices: builtins.list[str] | tuple[str, ...] = (),
        evaluation: str | None = None,
    ) -> GateResult:
        """Judge the version `model` names against `policy` (a YAML path or text) and store the result.

        With `data` and `label` the version is evaluated on those rows first (against the policy's champion
        when it has relative checks) and fairness, the deployment's contract and latency are measured on
        them; without, metric checks use `evaluation` (an id) or the version's newest evaluation.
        """
        from loopml.gates import measure, parse_policy

        text = policy_text(policy)
        parsed = parse_policy(text)
        version = self._client.models.resolve(model)
        measurements: dict[str, Any] | None = None
        if data is not None:
            if label is None:
                raise InvalidInput("evaluation data needs its label column (label=...)")
            baseline = None
            if parsed.needs_champion:
                line = next(r.line for r in parsed.metrics if r.relative is not None)
                try:
                    self._client.models.get_alias(version.name, parsed.champion)
                except NotFound:
                    raise InvalidPolicy(
                        f"gate policy line {line}: model {version.name!r} has no alias {parsed.champion!r} to compare "
                        "with (a first model has no champion: drop the relative checks, or set the alias)"
                    ) from None
                baseline = f"@{parsed.champion}"
            scored = self._client.evaluations.score(
                version.uri, data, label, task=task, slices=slices, baseline=baseline
            )
            evaluation = self._client.evaluations.record(scored).id
            loaded = self._client.models.load(version.uri)
            measurements = measure(parsed, scored, loaded, self._contract)
        return self._backend.call(
            ops.CHECK_GATE,
            name=version.name,
            version=version.version,
            policy=text,
            evaluation_id=evaluation,
            measurements=measurements,
        )

    def list(self, name: str, version: int | None = None, max_results: int = 100) -> builtins.list[GateResult]:
        """Gate results of model `name` (or one version), newest first."""
        return self._backend.call(ops.LIST_GATE_RESULTS, name=name, version=version, max_results=max_results)

    def get(self, result_id: str) -> GateResult:
        return self._backend.call(ops.GET_GATE_RESULT, result_id=result_id)

    def require(self, name: str, alias: str, required: bool = True) -> builtins.list[str]:
        """Make `alias` require a passed gate (or drop that with `required=False`, admins only); returns the
        model's guarded aliases."""
        return self._backend.call(ops.REQUIRE_GATE, name=name, alias=alias, required=required)

    def requirements(self, name: str) -> builtins.list[str]:
        return self._backend.call(ops.GATE_REQUIREMENTS, name=name)
