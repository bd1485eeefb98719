"""`loopml experiments ...` <-> `client.experiments`."""

from __future__ import annotations

import typer

from loopml.cli import output
from loopml.cli.app import state
from loopml.cli.options import JsonOption, ProjectOption
from loopml.domain.wire import experiment_to_json

app = typer.Typer(help="Experiments: named groups of runs in a project.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, project: ProjectOption = None, json: JsonOption = False) -> None:
    """List experiments (of one project with --project)."""
    experiments = state(ctx).client().experiments.list(project)
    if json:
        output.print_json([experiment_to_json(e) for e in experiments])
        return
    output.table(
        None,
        ["id", "project", "name", "created"],
        ([e.id, e.project, e.name, output.iso_time(e.created_at)] for e in experiments),
    )
