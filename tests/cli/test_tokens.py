from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from .conftest import Cli


def test_tokens_create_list_revoke_round_trip(cli: Cli) -> None:
    created = cli("tokens", "create", "ci", "--role", "editor", "--json")
    assert created.exit_code == 0, created.output
    token = orjson.loads(created.stdout)
    assert (token["name"], token["role"], token["project"]) == ("ci", "editor", None)
    assert token["secret"].startswith("lml_")
    assert "not shown again" in created.stderr

    listed = orjson.loads(cli("tokens", "list", "--json").stdout)
    assert [(t["id"], t["revoked_at"]) for t in listed] == [(token["id"], None)]
    assert "secret" not in listed[0]
    assert token["secret"] not in cli("tokens", "list").stdout

    revoked = cli("tokens", "revoke", token["id"])
    assert revoked.exit_code == 0, revoked.output
    assert token["id"] in revoked.stdout
    [after] = orjson.loads(cli("tokens", "list", "--json").stdout)
    assert after["revoked_at"] is not None


def test_tokens_create_human_prints_the_secret_once_with_a_warning(cli: Cli) -> None:
    result = cli("tokens", "create", "nightly", "--project", "bike")
    assert result.exit_code == 0, result.output
    secret = next(line for line in result.stdout.splitlines() if line.startswith("lml_"))
    assert "viewer" in result.stdout
    assert "project bike" in result.stdout
    assert "warning" in result.stderr
    assert "not shown again" in result.stderr
    assert secret not in cli("tokens", "list").stdout


def test_tokens_bad_input_exits_2(cli: Cli) -> None:
    assert cli("tokens", "create", "ci", "--role", "boss").exit_code == 2
    unknown = cli("tokens", "revoke", "feedfacecafe")
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("error:")


def test_tokens_act_on_the_store_named_by_database_url(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'server.db'}"
    monkeypatch.setenv("LOOPML_DATABASE_URL", url)
    assert cli("tokens", "create", "ci", "--role", "editor").exit_code == 0
    assert (tmp_path / "server.db").exists()
    monkeypatch.delenv("LOOPML_DATABASE_URL")
    assert orjson.loads(cli("tokens", "list", "--json").stdout) == []
