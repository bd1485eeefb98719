from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine

from loopml.store.migrations import LATEST, current_revision

from .conftest import Cli


def test_db_upgrade_migrates_a_fresh_database_once(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'loopml.db'}"
    result = cli("db", "upgrade", "--database-url", url)
    assert result.exit_code == 0, result.output
    assert f"-> {LATEST}" in result.stdout
    engine = create_engine(url)
    try:
        assert current_revision(engine) == LATEST
    finally:
        engine.dispose()

    again = cli("db", "upgrade", "--database-url", url)
    assert again.exit_code == 0
    assert "already" in again.stdout


def test_db_upgrade_defaults_to_the_store_under_loopml_home(cli: Cli) -> None:
    assert cli("db", "upgrade").exit_code == 0
    assert (cli.home / "loopml.db").exists()


def test_db_upgrade_rejects_a_bad_url(cli: Cli) -> None:
    result = cli("db", "upgrade", "--database-url", "mysql://nope/db")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: unsupported database URL scheme")
