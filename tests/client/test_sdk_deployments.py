"""Deployments through the SDK, the same on the embedded backend and over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

import loopml
from loopml.errors import DeploymentNotFound, InvalidInput


def _logged_model(client: loopml.Client, tmp_path: Path, rmse: float) -> tuple[str, str]:
    """A run that logged a model manifest under `model/`: (run id, manifest digest)."""
    manifest = tmp_path / f"manifest-{rmse}.json"
    manifest.write_text(f'{{"flavor": "sklearn", "rmse": {rmse}}}')
    run = client.runs.create("deploy")
    record = client.runs.log_artifact(run.id, manifest, "model/loopml-model.json")
    client.runs.end(run.id)
    return run.id, record.digest


@pytest.mark.operations(
    "deploy",
    "list_deployments",
    "get_deployment",
    "rollback_deployment",
    "promote_deployment",
    "deployment_history",
    "deployment_decisions",
    "shadow_comparison",
)
def test_deploy_canary_rollback_promote_history_on_both_backends(client: loopml.Client, tmp_path: Path) -> None:
    client.models.create("bike")
    for rmse in (41.0, 40.0):
        run_id, digest = _logged_model(client, tmp_path, rmse=rmse)
        client.models.create_version("bike", run_id, "model", digest, "sklearn")
    client.models.set_alias("bike", "champion", 1)
    first = client.deployments.deploy("bike-demand", "bike@champion")
    assert [(v.version, v.weight) for v in first.versions] == [(1, 100)]
    canary = client.deployments.deploy(
        "bike-demand", "bike/2", strategy="canary", canary_steps=(5, 50), thresholds={"min_requests": 20}
    )
    assert (canary.state, [(v.version, v.weight, v.role) for v in canary.versions]) == (
        "progressing",
        [(1, 95, "stable"), (2, 5, "canary")],
    )
    assert canary.thresholds["min_requests"] == 20
    assert client.deployments.status("bike-demand") == canary
    assert client.deployments.list() == [canary]
    rolled = client.deployments.rollback("bike-demand", reason="manual")
    assert rolled.state == "rolled_back"
    client.deployments.deploy("bike-demand", "bike/2", strategy="ab", ab_weight=20, sticky_key="user")
    promoted = client.deployments.promote("bike-demand")
    assert [(v.version, v.weight) for v in promoted.versions] == [(2, 100)]
    assert [r.revision for r in client.deployments.history("bike-demand")] == [5, 4, 3, 2, 1]
    assert client.deployments.history("bike-demand", limit=1)[0].deployment == promoted
    assert client.deployments.decisions("bike-demand") == []
    with pytest.raises(InvalidInput, match="no shadow"):
        client.deployments.shadow_comparison("bike-demand")
    with pytest.raises(DeploymentNotFound):
        client.deployments.status("nope")
