"""`loopml import-mlflow`: the command a user runs on a real MLflow store (see tests/importer)."""

from __future__ import annotations

import shutil
from pathlib import Path

import loopml

from .conftest import Cli

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "mlflow_store"


def test_import_mlflow_copies_the_store_and_a_second_run_skips_it(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "mlflow"
    shutil.copytree(FIXTURE, source)
    args = ("import-mlflow", "--from", f"sqlite:///{source / 'mlflow.db'}", "--artifacts", str(source / "mlartifacts"))
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "4 run(s) (0 already there)" in result.stdout and "2 version(s)" in result.stdout
    assert "skipped: 1 deleted run(s)" in result.stderr
    assert "4/4" in result.stderr  # the progress bar reached the end

    again = cli(*args)
    assert again.exit_code == 0, again.output
    assert "0 run(s) (4 already there)" in again.stdout

    client = loopml.Client(home=cli.home)
    try:
        version = client.models.resolve("models:/bikes-tree@champion")
        assert version.version == 2 and version.flavor == "sklearn"
        assert client.experiments.find("bikes").project == "default"
    finally:
        client.close()


def test_import_mlflow_refuses_what_it_cannot_read_with_exit_2(cli: Cli, tmp_path: Path) -> None:
    missing = cli("import-mlflow", "--from", f"sqlite:///{tmp_path / 'nope.db'}")
    assert missing.exit_code == 2
    assert "no such file" in missing.stderr
    postgres = cli("import-mlflow", "--from", "postgresql://db/mlflow")
    assert postgres.exit_code == 2
    assert "SQLite" in postgres.stderr
    remote = cli(
        "--tracking-uri", "http://127.0.0.1:9", "import-mlflow", "--from", f"sqlite:///{FIXTURE / 'mlflow.db'}"
    )
    assert remote.exit_code == 2
    assert "not through a server" in remote.stderr
