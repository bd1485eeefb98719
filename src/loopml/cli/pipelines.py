"""`loopml pipeline ...` <-> `client.pipelines` (run, runs, show, logs, retry, lineage)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import orjson
import typer
from rich.live import Live
from rich.table import Table

from loopml.cli import output
from loopml.cli.app import state
from loopml.cli.options import JsonOption
from loopml.domain import PipelineRunRecord, StepRun
from loopml.domain.pipelines import pipeline_run_to_json
from loopml.errors import InvalidInput

app = typer.Typer(
    help="Pipelines: run or submit them, list and show their runs, read step logs, retry, lineage, schedules.",
    no_args_is_help=True,
)

_COLOURS = {
    "finished": "green",
    "cached": "cyan",
    "running": "yellow",
    "pending": "dim",
    "failed": "red",
    "timed_out": "red",
    "killed": "red",
    "skipped": "dim",
}


def parse_params(values: list[str]) -> dict[str, Any]:
    """`key=value` pairs; a value that reads as JSON (6, 0.5, true, [1, 2]) is that value, else a string."""
    params: dict[str, Any] = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param takes key=value, got {item!r}")
        try:
            params[key] = orjson.loads(text)
        except orjson.JSONDecodeError:
            params[key] = text
    return params


def _duration(step: StepRun) -> str:
    if step.started_at is None or step.ended_at is None:
        return ""
    return f"{(step.ended_at - step.started_at) / 1000:.2f}s"


def steps_table(record: PipelineRunRecord, steps: list[StepRun]) -> Table:
    grid = Table(title=f"{record.pipeline} {record.run_id}", title_justify="left")
    for column in ("step", "state", "attempts", "time", "decision / error"):
        grid.add_column(column, overflow="fold", no_wrap=column in ("step", "state"))
    for step in steps:
        colour = _COLOURS.get(step.state.value, "white")
        note = step.error if step.error and not step.state.is_done else step.decision
        grid.add_row(step.step, f"[{colour}]{step.state.value}[/{colour}]", str(step.attempts), _duration(step), note)
    return grid


@contextlib.contextmanager
def live_view(enabled: bool) -> Iterator[Any]:
    """A callback that redraws the DAG's step table as the runner records progress (on a terminal only)."""
    if not enabled:
        yield None
        return
    with Live(Table(), console=output.stdout(), refresh_per_second=8, transient=True) as live:

        def redraw(record: PipelineRunRecord, steps: dict[str, StepRun]) -> None:
            live.update(steps_table(record, list(steps.values())))

        yield redraw


def _report(record: PipelineRunRecord, json: bool) -> None:
    if json:
        output.print_json(pipeline_run_to_json(record))
    else:
        output.stdout().print(steps_table(record, list(record.steps)))
        colour = "green" if record.status == "FINISHED" else "red"
        output.stdout().print(f"[{colour}]{record.status}[/{colour}] run {record.run_id}")
    if record.status != "FINISHED":
        raise typer.Exit(1)


@app.command("run")
def run(
    ctx: typer.Context,
    reference: Annotated[str, typer.Argument(help="The pipeline: module:function or path/to/file.py:function.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="A parameter, key=value (repeat).")] = None,
    executor: Annotated[str, typer.Option(help="Where steps run: process (default), inline or ray.")] = "process",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address, e.g. ray://host:10001.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step, ignoring cached outputs.")] = False,
    json: JsonOption = False,
) -> None:
    """Run a pipeline to its end, showing its steps as they go; exit 1 if it failed."""
    options = {"address": ray_address} if ray_address else None
    client = state(ctx).client()
    with live_view(not json and sys.stdout.isatty()) as redraw:
        result = client.pipelines.run(
            reference,
            parse_params(param or []),
            executor=executor,
            cache=not no_cache,
            executor_options=options,
            on_change=redraw,
        )
    _report(result.record, json)


@app.command("submit")
def submit(
    ctx: typer.Context,
    reference: Annotated[
        str,
        typer.Argument(
            help="The pipeline: path.py:function (under the server's LOOPML_PIPELINE_ROOTS) or module:function."
        ),
    ],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="A parameter, key=value (repeat).")] = None,
    executor: Annotated[str, typer.Option(help="Where steps run: process (default), inline or ray.")] = "process",
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step, ignoring cached outputs.")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the end (exit 1 if it failed).")] = False,
    json: JsonOption = False,
) -> None:
    """Have the server (or, embedded, a background process) run a pipeline; print the run id at once."""
    client = state(ctx).client()
    run = client.pipelines.submit(reference, parse_params(param or []), executor=executor, cache=not no_cache)
    if not wait:
        if json:
            output.print_json(pipeline_run_to_json(run.record))
        else:
            typer.echo(f"submitted run {run.id} ({run.record.pipeline}); `loopml pipeline show {run.id}` follows it")
        return
    with live_view(not json and sys.stdout.isatty()) as redraw:
        done = client.pipelines.wait(run.id, on_change=redraw)
    _report(done.record, json)


@app.command("retry")
def retry(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The failed pipeline run.")],
    executor: Annotated[str | None, typer.Option(help="Executor (default: the one the run used).")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the end (exit 1 if it failed).")] = True,
    json: JsonOption = False,
) -> None:
    """Run a failed pipeline run again: finished steps reuse their outputs, the rest run."""
    client = state(ctx).client()
    with live_view(wait and not json and sys.stdout.isatty()) as redraw:
        result = client.pipelines.retry(run_id, executor=executor, on_change=redraw, wait=wait)
    if not wait:
        if json:
            output.print_json(pipeline_run_to_json(result.record))
        else:
            typer.echo(f"retrying as run {result.id}; `loopml pipeline show {result.id}` follows it")
        return
    _report(result.record, json)


@app.command("runs")
def runs(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only the runs of this pipeline.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs in this status (RUNNING, FINISHED, FAILED...).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most runs to list.")] = 50,
    json: JsonOption = False,
) -> None:
    """List pipeline runs, newest first."""
    found = state(ctx).client().pipelines.runs(name, status=status, limit=limit)
    if json:
        output.print_json([pipeline_run_to_json(r) for r in found])
        return
    output.table(
        None,
        ["run id", "pipeline", "status", "start time", "trigger", "params"],
        [
            (
                r.run_id,
                r.pipeline,
                r.status,
                output.iso_time(r.start_time),
                r.trigger.get("kind"),
                orjson.dumps(r.params).decode(),
            )
            for r in found
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Pipeline run id.")],
    json: JsonOption = False,
) -> None:
    """Show a pipeline run: each step's state, attempts, cache decision, error and traceback."""
    record = state(ctx).client().pipelines.get(run_id).record
    if json:
        output.print_json(pipeline_run_to_json(record))
        return
    console = output.stdout()
    console.print(f"[bold]{record.pipeline}[/bold] {record.run_id} [bold]{record.status}[/bold]  {record.ref}")
    console.print(f"params {orjson.dumps(record.params).decode()}  trigger {orjson.dumps(record.trigger).decode()}")
    console.print(steps_table(record, list(record.steps)))
    for step in record.steps:
        if step.traceback and not step.state.is_done:
            console.print(f"[red]{step.step}[/red] traceback:")
            console.print(step.traceback, markup=False, highlight=False)


@app.command("logs")
def logs(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Pipeline run id.")],
    step: Annotated[str, typer.Argument(help="Step name (as `show` lists it) or step run id.")],
) -> None:
    """Print what a step wrote to stdout and stderr (its last attempt)."""
    typer.echo(state(ctx).client().pipelines.logs(run_id, step), nl=False)


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    reference: Annotated[str, typer.Argument(help="models:/name/version (or @alias), a step run id or a digest.")],
    json: JsonOption = False,
) -> None:
    """Which data and code produced a model version (or a step's output)."""
    found = state(ctx).client().pipelines.lineage(reference).to_json()
    if json:
        output.print_json(found)
        return
    console = output.stdout()
    console.print(f"[bold]lineage of {found['subject']}[/bold]")
    output.table(
        "datasets",
        ["digest", "name", "rows", "source"],
        [(d["digest"][:12], d.get("name"), d.get("rows"), d.get("source")) for d in found["datasets"]],
    )
    output.table(
        "steps",
        ["step run", "step", "pipeline run", "params", "code"],
        [
            (s["run_id"], s["step"], s["pipeline_run_id"], orjson.dumps(s["params"]).decode(), ", ".join(s["code"]))
            for s in found["steps"]
        ],
    )
    output.table(
        "code",
        ["pipeline run", "pipeline", "git commit", "dirty"],
        [(run_id, c["pipeline"], c["git_commit"], c["git_dirty"]) for run_id, c in found["code"].items()],
    )
