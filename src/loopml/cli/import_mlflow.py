"""`loopml import-mlflow --from sqlite:///mlflow.db --artifacts DIR`: copy an MLflow store into loopml."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated

import typer

from loopml.cli import output
from loopml.cli.app import state
from loopml.errors import InvalidInput
from loopml.settings import load_settings


def _actor() -> str:
    try:
        return f"import-mlflow:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"import-mlflow:uid{os.getuid()}"


def import_mlflow(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Option("--from", help="The MLflow tracking store: sqlite:///path/to/mlflow.db.", show_default=False),
    ],
    artifacts: Annotated[
        Path | None,
        typer.Option(
            help="The MLflow artifact root on this machine (mlflow server's --artifacts-destination, or ./mlruns);"
            " without it only metadata is imported.",
            show_default=False,
        ),
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="loopml project to import into (default: LOOPML_DEFAULT_PROJECT).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="loopml metadata store (default: LOOPML_DATABASE_URL, else SQLite under LOOPML_HOME)."),
    ] = None,
    artifact_root: Annotated[
        str | None,
        typer.Option(help="loopml artifact store root (default: LOOPML_ARTIFACT_ROOT, else under LOOPML_HOME)."),
    ] = None,
    trust_pickle: Annotated[
        bool, typer.Option(help="Import registered models MLflow stored with pickle or cloudpickle.")
    ] = False,
) -> None:
    """Copy an MLflow store (experiments, runs, metric histories, params, tags, artifacts, registered models,
    versions, aliases) into loopml's stores. Safe to run again: what is already there is skipped, so an
    interrupted import resumes where it stopped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from loopml.artifacts import open_artifact_store
    from loopml.domain import Principal, Role
    from loopml.importer import MlflowSource, MlflowStoreImport
    from loopml.importer import Progress as ImportProgress
    from loopml.store import MetadataStore

    if (state(ctx).tracking_uri or "").startswith(("http://", "https://")):
        raise InvalidInput(
            "import-mlflow writes to the metadata store directly, not through a server: run it where "
            "--database-url (or LOOPML_DATABASE_URL) reaches the server's database, without --tracking-uri"
        )
    overrides: dict[str, object] = {}
    if database_url is not None:
        overrides["database_url"] = database_url
    if artifact_root is not None:
        overrides["artifact_root"] = artifact_root
    settings = load_settings(**overrides)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs, {task.fields[points]:,} metric points"),
        TimeElapsedColumn(),
    )
    console = output.stderr()
    with MlflowSource(source, artifacts) as mlflow_store:
        store = MetadataStore.open(settings.resolved_database_url())
        try:
            blobs = open_artifact_store(settings.resolved_artifact_root(), settings.s3_endpoint_url)
            importer = MlflowStoreImport(store, blobs, project or settings.default_project)
            with Progress(*columns, console=console, transient=False) as bar:
                task = bar.add_task("importing", total=None, points=0)

                class _Bar(ImportProgress):
                    def start(self, runs: int, points: int) -> None:  # noqa: ARG002 (the bar counts runs)
                        bar.update(task, total=runs)

                    def advance(self, runs: int, points: int) -> None:
                        done = bar.tasks[0].fields["points"] + points
                        bar.update(task, advance=runs, points=done)

                    def note(self, message: str) -> None:
                        bar.console.print(f"skipped: {message}", markup=False, soft_wrap=True)

                principal = Principal(actor=_actor(), role=Role.ADMIN, project=None)
                report = importer.run(principal, mlflow_store, _Bar(), trust_pickle=trust_pickle)
        finally:
            store.close()
    output.stdout().print(
        f"imported {report.experiments} experiment(s), {report.runs:,} run(s) "
        f"({report.runs_already_there:,} already there), {report.metric_points:,} metric points, "
        f"{report.artifacts:,} artifact(s), {report.models} model(s), {report.versions} version(s) "
        f"({report.versions_already_there} already there), {report.aliases} alias(es); "
        f"{len(report.skipped)} item(s) skipped",
        markup=False,
        soft_wrap=True,
    )
