"""`loopml runs ...` <-> `client.runs` (list, show, search)."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli import output
from loopml.cli.app import state
from loopml.cli.options import JsonOption, MaxResultsOption, ProjectOption, View, ViewOption
from loopml.domain import Run
from loopml.domain.wire import artifact_to_json, dataset_to_json, run_to_json

app = typer.Typer(help="Runs: list, show, search, delete and restore tracked runs.", no_args_is_help=True)
RunIds = Annotated[list[str], typer.Argument(help="One or more run ids.")]


@app.command("list")
def list_(
    ctx: typer.Context,
    experiment: Annotated[str, typer.Argument(help="Experiment name.")],
    project: ProjectOption = None,
    max_results: MaxResultsOption = 100,
    json: JsonOption = False,
) -> None:
    """List the runs of an experiment, newest first."""
    runs = state(ctx).client().runs.list(experiment, max_results=max_results, project=project)
    if json:
        output.print_json([run_to_json(r) for r in runs])
    else:
        output.runs_table(runs)


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    json: JsonOption = False,
) -> None:
    """Show one run: params, latest metrics, tags, datasets and artifacts."""
    client = state(ctx).client()
    run = client.runs.get(run_id)
    datasets = client.runs.datasets(run_id)
    artifacts = client.runs.artifacts(run_id)
    if json:
        document = run_to_json(run)
        document["datasets"] = [dataset_to_json(d) for d in datasets]
        document["artifacts"] = [artifact_to_json(a) for a in artifacts]
        output.print_json(document)
        return
    console = output.stdout()
    console.print(f"[bold]run[/bold] {run.id}  {run.name}  [bold]{run.status.value}[/bold]")
    console.print(f"experiment {run.experiment_id}  started {output.iso_time(run.start_time)}", end="")
    console.print(f"  ended {output.iso_time(run.end_time)}" if run.end_time is not None else "")
    if run.parent_run_id:
        console.print(f"parent run {run.parent_run_id}")
    output.pairs("params", run.params)
    output.pairs("metrics (latest)", {k: output.number(v) for k, v in run.metrics.items()})
    output.pairs("tags", run.tags)
    if datasets:
        output.table(
            "datasets",
            ["name", "role", "digest", "rows", "source"],
            ([d.name, d.role, d.digest[:12], d.rows, d.source] for d in datasets),
        )
    if artifacts:
        output.table("artifacts", ["path", "size", "sha256"], ([a.path, a.size, a.digest[:12]] for a in artifacts))


@app.command("search")
def search(
    ctx: typer.Context,
    experiments: Annotated[list[str], typer.Argument(help="One or more experiment names.")],
    filter_: Annotated[
        str | None,
        typer.Option("--filter", help="e.g. \"metrics.rmse < 45 and params.model = 'gbm'\"."),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", help="e.g. 'metrics.rmse' or 'attributes.start_time DESC'; repeatable."),
    ] = None,
    max_results: MaxResultsOption = 100,
    project: ProjectOption = None,
    view_type: ViewOption = View.active_only,
    json: JsonOption = False,
) -> None:
    """Search runs across experiments with the filter language of `client.runs.search` (deleted runs with
    --view-type deleted_only or all)."""
    page = (
        state(ctx)
        .client()
        .runs.search(
            experiments,
            filter=filter_,
            order_by=order_by or None,
            max_results=max_results,
            project=project,
            view_type=view_type.value,
        )
    )
    if json:
        output.print_json([run_to_json(r) for r in page.items])
    else:
        output.runs_table(page.items)
    if page.next_page_token is not None:
        output.stderr().print(f"more runs match; showing the first {max_results} (raise --max-results)")


@app.command("delete")
def delete(ctx: typer.Context, run_ids: RunIds, json: JsonOption = False) -> None:
    """Delete runs (soft, as MLflow: searches leave them out; `loopml runs restore` brings them back)."""
    runs = state(ctx).client().runs
    _report("deleted", [runs.delete(run_id) for run_id in run_ids], json)


@app.command("restore")
def restore(ctx: typer.Context, run_ids: RunIds, json: JsonOption = False) -> None:
    """Restore deleted runs."""
    runs = state(ctx).client().runs
    _report("restored", [runs.restore(run_id) for run_id in run_ids], json)


def _report(verb: str, runs: list[Run], json: bool) -> None:
    if json:
        output.print_json([run_to_json(r) for r in runs])
        return
    for run in runs:
        output.stdout().print(f"{verb} run {run.id} ({run.name})")
