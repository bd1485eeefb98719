"""`loopml experiments ...` <-> `client.experiments` (list, rename, delete, restore)."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli import output
from loopml.cli.app import state
from loopml.cli.options import JsonOption, ProjectOption, View, ViewOption
from loopml.client import Client
from loopml.domain import Experiment
from loopml.domain.wire import experiment_to_json

app = typer.Typer(help="Experiments: named groups of runs in a project.", no_args_is_help=True)

ExperimentArgument = Annotated[str, typer.Argument(help="Experiment id, or name (in --project).")]


@app.command("list")
def list_(
    ctx: typer.Context,
    project: ProjectOption = None,
    view_type: ViewOption = View.active_only,
    json: JsonOption = False,
) -> None:
    """List experiments (of one project with --project); deleted ones with --view-type."""
    experiments = state(ctx).client().experiments.list(project, view_type=view_type.value)
    if json:
        output.print_json([experiment_to_json(e) for e in experiments])
        return
    output.table(
        None,
        ["id", "project", "name", "created", "deleted"],
        ([e.id, e.project, e.name, output.iso_time(e.created_at), output.iso_time(e.deleted_at)] for e in experiments),
    )


def _experiment_id(client: Client, reference: str, project: str | None) -> int:
    """An id as it is; a name looked up in `project` (live or deleted, so a deleted one can be restored)."""
    if reference.isdigit():
        return int(reference)
    return client.experiments.find(reference, project).id


def _done(verb: str, experiment: Experiment, json: bool) -> None:
    if json:
        output.print_json(experiment_to_json(experiment))
    else:
        output.stdout().print(f"{verb} experiment {experiment.id} ({experiment.name!r} in {experiment.project!r})")


@app.command("rename")
def rename(
    ctx: typer.Context,
    experiment: ExperimentArgument,
    new_name: Annotated[str, typer.Argument(help="The new name (free in its project).")],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Rename an experiment."""
    client = state(ctx).client()
    _done("renamed", client.experiments.rename(_experiment_id(client, experiment, project), new_name), json)


@app.command("delete")
def delete(
    ctx: typer.Context, experiment: ExperimentArgument, project: ProjectOption = None, json: JsonOption = False
) -> None:
    """Delete an experiment and its live runs (soft: `restore` brings both back)."""
    client = state(ctx).client()
    _done("deleted", client.experiments.delete(_experiment_id(client, experiment, project)), json)


@app.command("restore")
def restore(
    ctx: typer.Context, experiment: ExperimentArgument, project: ProjectOption = None, json: JsonOption = False
) -> None:
    """Restore a deleted experiment and the runs deleted with it."""
    client = state(ctx).client()
    _done("restored", client.experiments.restore(_experiment_id(client, experiment, project)), json)
