"""`loopml models ...`: list, show, versions, alias (move and delete), search-versions."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import loopml

from .conftest import Cli, Runs


@pytest.fixture
def registered(cli: Cli, runs: Runs, tmp_path: Path) -> str:
    """Model `bike` with two versions from the good run (which logged `model/loopml-model.json`)."""
    manifest = tmp_path / "loopml-model.json"
    manifest.write_text('{"flavor": "sklearn"}')
    client = loopml.Client(home=cli.home)
    try:
        digest = client.runs.log_artifact(runs.good, manifest, "model/loopml-model.json").digest
        client.models.create("bike", description="hourly demand", tags={"team": "ds"})
        client.models.create("churn")
        client.models.create_version("bike", runs.good, "model", digest, "sklearn")
        client.models.create_version("bike", runs.good, "model", digest, "sklearn", tags={"note": "retrained"})
    finally:
        client.close()
    return "bike"


def test_models_list_human_and_json(cli: Cli, registered: str) -> None:
    human = cli("models", "list")
    assert human.exit_code == 0, human.output
    header = next(line for line in human.stdout.splitlines() if "name" in line)
    for column in ("project", "latest", "aliases", "owner", "updated"):
        assert column in header
    assert "bike" in human.stdout and "churn" in human.stdout
    result = cli("models", "list", "--filter", "tags.team = 'ds'", "--json")
    assert result.exit_code == 0, result.output
    [model] = orjson.loads(result.stdout)
    assert (model["name"], model["latest_version"], model["tags"]) == ("bike", 2, {"team": "ds"})


def test_alias_moves_and_show_and_versions_report_it(cli: Cli, registered: str) -> None:
    moved = cli("models", "alias", "bike", "champion", "1", "--reason", "first good model")
    assert moved.exit_code == 0, moved.output
    assert "bike@champion -> version 1" in moved.stdout
    shown = cli("models", "show", "bike")
    assert shown.exit_code == 0, shown.output
    assert "hourly demand" in shown.stdout and "champion" in shown.stdout
    document = orjson.loads(cli("models", "show", "bike", "--json").stdout)
    assert document["aliases"] == {"champion": 1}
    assert [v["version"] for v in document["versions"]] == [2, 1]
    versions = orjson.loads(cli("models", "versions", "bike", "--json").stdout)
    assert [(v["version"], v["aliases"]) for v in versions] == [(2, []), (1, ["champion"])]
    table = cli("models", "versions", "bike")
    assert "metrics.rmse" in table.stdout and "41.5" in table.stdout
    filtered = orjson.loads(cli("models", "versions", "bike", "--filter", "tags.note = 'retrained'", "--json").stdout)
    assert [v["version"] for v in filtered] == [2]

    deleted = cli("models", "alias", "bike", "champion", "--delete", "--reason", "rollback")
    assert deleted.exit_code == 0, deleted.output
    assert "pointed at version 1" in deleted.stdout
    with loopml.Client(home=cli.home) as client:
        events = client.audit.events()
    moves = [(e.action, (e.after or {})["reason"]) for e in events if "alias" in e.action]
    assert moves == [("model.set_alias", "first good model"), ("model.delete_alias", "rollback")]


def test_search_versions_across_models(cli: Cli, registered: str) -> None:
    result = cli("models", "search-versions", "--filter", "metrics.rmse < 45 and attributes.version = 1", "--json")
    assert result.exit_code == 0, result.output
    assert [(v["name"], v["version"]) for v in orjson.loads(result.stdout)] == [("bike", 1)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "show", "nope"], "does not exist"),
        (["models", "alias", "bike", "champion"], "give the version"),
        (["models", "alias", "bike", "champion", "1", "--delete"], "not both"),
        (["models", "alias", "bike", "latest", "1"], "reserved"),
        (["models", "alias", "bike", "champion", "7"], "no version 7"),
        (["models", "versions", "bike", "--filter", "params.x = '1'"], "unknown prefix"),
    ],
)
def test_mistakes_exit_2_with_a_message(cli: Cli, registered: str, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
