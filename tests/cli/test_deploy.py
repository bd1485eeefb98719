"""`loopml deploy ...`: the short `deploy NAME --model REF` form, canary, rollback, history, and mistakes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import loopml

from .conftest import Cli, Runs


@pytest.fixture
def versions(cli: Cli, runs: Runs, tmp_path: Path) -> None:
    manifest = tmp_path / "loopml-model.json"
    manifest.write_text('{"flavor": "sklearn"}')
    client = loopml.Client(home=cli.home)
    try:
        digest = client.runs.log_artifact(runs.good, manifest, "model/loopml-model.json").digest
        client.models.create("bike-demand")
        for _ in range(2):
            client.models.create_version("bike-demand", runs.good, "model", digest, "sklearn")
        client.models.set_alias("bike-demand", "champion", 1)
        client.models.set_alias("bike-demand", "challenger", 2)
    finally:
        client.close()


def test_deploy_canary_status_rollback_history(cli: Cli, versions: None) -> None:
    direct = cli("deploy", "bike-demand", "--model", "bike-demand@champion")
    assert direct.exit_code == 0, direct.output
    assert "direct, stable, revision 1" in direct.stdout
    canary = cli(
        "deploy",
        "bike-demand",
        "--model",
        "bike-demand@challenger",
        "--canary",
        "10,50,100",
        "--analysis",
        "5m",
        "--threshold",
        "min_requests=100",
        "--json",
    )
    assert canary.exit_code == 0, canary.output
    spec = orjson.loads(canary.stdout)
    assert (spec["strategy"], spec["analysis_seconds"], spec["canary_steps"]) == ("canary", 300, [10, 50, 100])
    assert spec["thresholds"]["min_requests"] == 100
    assert [(v["version"], v["weight"]) for v in spec["versions"]] == [(1, 90), (2, 10)]
    status = cli("deploy", "status", "bike-demand")
    assert status.exit_code == 0 and "progressing" in status.stdout and "step 1 of 10,50,100" in status.stdout
    rolled = cli("deploy", "rollback", "bike-demand", "--reason", "too slow")
    assert rolled.exit_code == 0 and "rolled_back" in rolled.stdout
    history = cli("deploy", "history", "bike-demand", "--json")
    assert next(r["reason"] for r in orjson.loads(history.stdout)) == "too slow"
    shadow = cli("deploy", "create", "bike-demand", "--model", "bike-demand/2", "--shadow")
    assert shadow.exit_code == 0, shadow.output
    comparison = cli("deploy", "shadow", "bike-demand", "--window", "10m")
    assert comparison.exit_code == 0 and orjson.loads(comparison.stdout)["compared"] == 0
    promoted = cli("deploy", "promote", "bike-demand")
    assert promoted.exit_code == 0 and "promoted" in promoted.stdout
    assert "follows alias champion" in promoted.stdout
    model = cli("models", "show", "bike-demand", "--json")
    assert model.exit_code == 0 and orjson.loads(model.stdout)["aliases"]["champion"] == 2, model.output
    listed = cli("deploy", "list")
    assert "bike-demand/2 100% stable" in listed.stdout
    assert cli("deploy", "decisions", "bike-demand").exit_code == 0


def test_decisions_number_steps_the_same_way_in_the_table_the_json_and_the_status(cli: Cli, versions: None) -> None:
    assert cli("deploy", "bike-demand", "--model", "bike-demand@champion").exit_code == 0
    started = cli("deploy", "bike-demand", "--model", "bike-demand@challenger", "--canary", "10,50,100", "--json")
    assert started.exit_code == 0, started.output
    client = loopml.Client(home=cli.home)
    try:  # what the rollout controller does after a failed analysis of the first step
        service = client.backend.deployments  # type: ignore[attr-defined]
        canary = service.status(client.backend.principal, "bike-demand")  # type: ignore[attr-defined]
        service.apply_analysis(canary, "failed", {}, "error rate too high", canary.updated_at + 1000)
    finally:
        client.close()
    assert "step 1 of 10,50,100" in cli("deploy", "status", "bike-demand").stdout
    [decision] = orjson.loads(cli("deploy", "decisions", "bike-demand", "--json").stdout)
    assert decision["step"] == 1
    table = cli("deploy", "decisions", "bike-demand").stdout
    [row] = [line.split("│") for line in table.splitlines() if "rollback" in line]
    assert row[3].strip() == "1"  # time, revision, step


def test_deploy_mistakes_exit_2_with_what_to_fix(cli: Cli, versions: None) -> None:
    cases = [
        (["deploy", "x", "--model", "bike-demand/1", "--canary", "ten"], "comma-separated percentages"),
        (["deploy", "x", "--model", "bike-demand/1", "--analysis", "soon"], "duration"),
        (["deploy", "x", "--model", "bike-demand/1", "--threshold", "p99"], "KEY=NUMBER"),
        (["deploy", "x", "--model", "bike-demand/1", "--shadow", "--ab", "50"], "choose one strategy"),
        (["deploy", "x", "--model", "bike-demand/2", "--canary", "10,100"], "needs a stable version"),
        (["deploy", "status", "nope"], "does not exist"),
        (["deploy", "x"], "give --model REF to deploy a version, or --emit docker|k8s DIR"),
        (["deploy", "x", "--emit", "helm", "out"], "emit kind must be one of docker, k8s"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)


def test_deploy_emit_writes_the_replica_files_and_deploys_when_given_a_model(
    cli: Cli, versions: None, tmp_path: Path
) -> None:
    only_files = cli("deploy", "bike-demand", "--emit", "k8s", str(tmp_path / "k8s"))
    assert only_files.exit_code == 0, only_files.output
    assert sorted(p.name for p in (tmp_path / "k8s").iterdir()) == [
        "deployment.yaml",
        "horizontalpodautoscaler.yaml",
        "service.yaml",
    ]
    assert "loopml-bike-demand" in (tmp_path / "k8s" / "deployment.yaml").read_text()
    assert orjson.loads(cli("deploy", "list", "--json").stdout) == []  # nothing was deployed

    both = cli("deploy", "bike-demand", "--model", "bike-demand@champion", "--emit", "docker", str(tmp_path / "d"))
    assert both.exit_code == 0, both.output
    assert "direct, stable, revision 1" in both.stdout
    assert '"serve", "--deployments", "bike-demand"' in (tmp_path / "d" / "Dockerfile").read_text()
