"""`loopml pipeline schedule | schedules | unschedule | firings` <-> `client.pipelines.schedule()` and friends.

loopml pipeline schedule examples/bike/pipeline.py:nightly --cron "0 2 * * *" --param start=2012-01-01
loopml pipeline schedule retrain --pipeline examples/bike/pipeline.py:retrain --dataset bike-hourly
loopml pipeline schedules && loopml pipeline firings nightly && loopml pipeline unschedule nightly
"""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from loopml.cli import output
from loopml.cli.app import state
from loopml.cli.options import JsonOption
from loopml.cli.pipelines import app, parse_params
from loopml.errors import InvalidInput

__all__ = ["app"]


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="The schedule's name, or the pipeline itself (path/to/file.py:function or module:function), "
            "which then names the schedule after the function."
        ),
    ],
    pipeline: Annotated[
        str | None, typer.Option(help="The pipeline, when NAME is only a name: module:function or file.py:function.")
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option(help='Cron expression in UTC, e.g. "0 2 * * *" (default: the pipeline\'s own schedule=).'),
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="Also run when a new version of this dataset is logged.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="A parameter, key=value (repeat).")] = None,
    executor: Annotated[str, typer.Option(help="Where the steps run: process (default), inline or ray.")] = "process",
    json: JsonOption = False,
) -> None:
    """Have `loopml server` run a pipeline on a cron schedule and/or on new versions of a dataset."""
    if pipeline is None:
        if ":" not in name:
            raise InvalidInput(
                f"{name!r} is not a pipeline reference: give the pipeline as NAME (file.py:function) or with --pipeline"
            )
        pipeline, name = name, name.rpartition(":")[2]
    client = state(ctx).client()
    params = parse_params(param or [])
    made = client.pipelines.schedule(name, pipeline, cron=cron, dataset=dataset, params=params, executor=executor)
    if json:
        output.print_json(made.to_json())
        return
    triggers = []
    if made.cron:
        triggers.append(f"cron {made.cron!r} (UTC)")
    if made.dataset:
        triggers.append(f"new versions of dataset {made.dataset!r}")
    typer.echo(f"scheduled {made.name}: {made.pipeline} on {' and '.join(triggers)}; `loopml server` starts its runs")


@app.command("schedules")
def schedules(ctx: typer.Context, json: JsonOption = False) -> None:
    """List pipeline schedules."""
    found = state(ctx).client().pipelines.schedules()
    if json:
        output.print_json([s.to_json() for s in found])
        return
    output.table(
        None,
        ["name", "project", "pipeline", "cron (UTC)", "dataset", "executor", "params", "last tick"],
        [
            (
                s.name,
                s.project,
                s.pipeline,
                s.cron or "",
                s.dataset or "",
                s.executor,
                orjson.dumps(s.params).decode(),
                output.iso_time(s.last_tick) if s.cron else "",
            )
            for s in found
        ],
    )


@app.command("unschedule")
def unschedule(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The schedule to remove.")], json: JsonOption = False
) -> None:
    """Stop firing a schedule (a run it started goes on to its end)."""
    removed = state(ctx).client().pipelines.unschedule(name)
    if json:
        output.print_json(removed.to_json())
        return
    typer.echo(f"unscheduled {removed.name}")


@app.command("firings")
def firings(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this schedule's firings.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most firings to list.")] = 50,
    json: JsonOption = False,
) -> None:
    """Each time a schedule fired, newest first: why, its run, and how it ended."""
    found = state(ctx).client().pipelines.firings(name, limit)
    if json:
        output.print_json([f.to_json() for f in found])
        return
    output.table(
        None,
        ["schedule", "key", "state", "fired at", "run id", "reason"],
        [(f.schedule, f.key, f.state, output.iso_time(f.fired_at), f.run_id or "", f.reason) for f in found],
    )
