"""`loopml runs delete|restore`, `loopml experiments rename|delete|restore`, `loopml models delete`, and the
exit codes docs/cli.md promises: 2 for a caller's mistake (not found, already exists, in use), 0 on success."""

from __future__ import annotations

import json
from pathlib import Path

import loopml
from loopml.cli import app

from .conftest import Cli, Runs


def test_runs_are_deleted_hidden_from_search_and_restored(cli: Cli, runs: Runs) -> None:
    deleted = cli("runs", "delete", runs.bad)
    assert deleted.exit_code == 0, deleted.output
    assert f"deleted run {runs.bad}" in deleted.output
    listed = json.loads(cli("runs", "search", "bike", "--json").output)
    assert [r["id"] for r in listed] == [runs.good]
    hidden = json.loads(cli("runs", "search", "bike", "--view-type", "deleted_only", "--json").output)
    assert [r["id"] for r in hidden] == [runs.bad] and hidden[0]["deleted_at"] is not None
    restored = cli("runs", "restore", runs.bad, "--json")
    assert restored.exit_code == 0 and json.loads(restored.output)[0]["deleted_at"] is None
    assert len(json.loads(cli("runs", "search", "bike", "--json").output)) == 2
    missing = cli("runs", "delete", "0" * 32)
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert cli("runs", "search", "bike", "--view-type", "gone").exit_code == 2  # a usage error


def test_experiments_are_renamed_deleted_and_restored_by_name_or_id(cli: Cli, runs: Runs) -> None:
    renamed = cli("experiments", "rename", "bike", "bike-hourly", "--json")
    assert renamed.exit_code == 0, renamed.output
    experiment = json.loads(renamed.output)
    assert experiment["name"] == "bike-hourly"
    deleted = cli("experiments", "delete", str(experiment["id"]))
    assert deleted.exit_code == 0 and "deleted experiment" in deleted.output
    assert json.loads(cli("experiments", "list", "--json").output) == []
    gone = json.loads(cli("experiments", "list", "--view-type", "deleted_only", "--json").output)
    assert [e["name"] for e in gone] == ["bike-hourly"]
    assert cli("experiments", "restore", "bike-hourly").exit_code == 0  # a deleted one is found by name
    assert [e["name"] for e in json.loads(cli("experiments", "list", "--json").output)] == ["bike-hourly"]
    assert len(json.loads(cli("runs", "list", "bike-hourly", "--json").output)) == 2


def test_already_exists_and_not_found_exit_2_with_the_message(cli: Cli, runs: Runs) -> None:
    with loopml.Client(home=cli.home) as client:
        client.experiments.get_or_create("taxi")
    taken = cli("experiments", "rename", "bike", "taxi")
    assert taken.exit_code == 2 and "already exists" in taken.output
    unknown = cli("experiments", "delete", "nope")
    assert unknown.exit_code == 2 and "does not exist" in unknown.output
    no_model = cli("models", "delete", "nope", "--yes")
    assert no_model.exit_code == 2 and "does not exist" in no_model.output


def test_models_delete_asks_first_and_refuses_what_a_deployment_serves(cli: Cli, runs: Runs, tmp_path: Path) -> None:
    manifest = tmp_path / "loopml-model.json"
    manifest.write_text('{"flavor": "sklearn"}')
    with loopml.Client(home=cli.home) as client:
        record = client.runs.log_artifact(runs.good, manifest, "model/loopml-model.json")
        for name in ("bike", "churn"):
            client.models.create(name)
            client.models.create_version(name, runs.good, "model", record.digest, "sklearn")
            client.models.create_version(name, runs.good, "model", record.digest, "sklearn")
        client.deployments.deploy("bike-demand", "bike/1")

    unconfirmed = cli.runner.invoke(app, ["models", "delete", "churn"], input="n\n")
    assert unconfirmed.exit_code == 1 and "Aborted" in unconfirmed.output
    in_use = cli("models", "delete", "bike", "--yes")
    assert in_use.exit_code == 2 and "deployment 'bike-demand'" in in_use.output
    one = cli("models", "delete", "bike", "--version", "2", "--yes")
    assert one.exit_code == 0 and "deleted version 2 of model 'bike'" in one.output
    confirmed = cli.runner.invoke(app, ["models", "delete", "churn"], input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    with loopml.Client(home=cli.home) as client:
        assert [m.name for m in client.models.list()] == ["bike"]
        assert [v.version for v in client.models.versions("bike")] == [1]
