"""`loopml features ...`: feature-store definitions, materialization and lookups, on the embedded store.

loopml features plan features.py          # what apply would change (like `terraform plan`); exit 2 on a problem
loopml features apply features.py         # new versions by definition digest, audited
loopml features materialize weather_hourly --end 2012-12-31 [--start 2012-01-01]   # incremental by default
loopml features list
loopml features show feature_view weather_hourly [--version 1]
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli import output
from loopml.cli.options import JsonOption

if TYPE_CHECKING:
    from loopml.domain.features import Plan

app = typer.Typer(
    help="Feature store: definitions (plan, apply), materialization into the online store, lookups.",
    no_args_is_help=True,
)

DefinitionsFile = Annotated[Path, typer.Argument(help="A Python file of feature definitions.", show_default=False)]
ProjectOption = Annotated[str | None, typer.Option(help="Project (default: LOOPML_DEFAULT_PROJECT).")]


@app.callback()
def _stores(ctx: typer.Context) -> None:
    import loopml.features as features

    ctx.call_on_close(features.close)


_SYMBOL = {"create": "[green]+[/green]", "update": "[yellow]~[/yellow]", "delete": "[red]-[/red]", "unchanged": " "}


def _show_plan(plan: Plan, applied: bool) -> None:
    rows = []
    for change in plan.changes:
        if change.action == "update":
            what = f"new version (was {change.version}): {', '.join(change.details)}"
            if applied:
                what = f"now version {change.version}"
        elif change.action == "create":
            what = f"version {change.version}" if applied else "new"
        elif change.action == "delete":
            what = f"version {change.version} deleted" if applied else f"delete version {change.version}"
        else:
            what = f"version {change.version}"
        rows.append((_SYMBOL[change.action], change.kind, change.name, change.action, what))
    output.table(f"project {plan.project}", ["", "kind", "name", "change", "details"], rows)
    counts = {a: sum(c.action == a for c in plan.changes) for a in ("create", "update", "delete")}
    summary = ", ".join(f"{n} to {a}" for a, n in counts.items() if n) or "no changes"
    if applied:
        summary = summary.replace(" to ", " ").replace("create", "created").replace("update", "updated")
        summary = summary.replace("delete", "deleted")
    output.stdout().print(f"{'applied: ' if applied else 'plan: '}{summary}")


@app.command("plan")
def plan(path: DefinitionsFile, project: ProjectOption = None, json: JsonOption = False) -> None:
    """Show what `apply` would change, after checking every definition against its data."""
    import loopml.features as features

    result = features.plan(path, project)
    if json:
        output.print_json(asdict(result))
        return
    _show_plan(result, applied=False)


@app.command("apply")
def apply(path: DefinitionsFile, project: ProjectOption = None, json: JsonOption = False) -> None:
    """Store the definitions: a new version of each changed one, deletion of those no longer in the file."""
    import loopml.features as features

    result = features.apply(path, project)
    if json:
        output.print_json(asdict(result))
        return
    _show_plan(result, applied=True)


@app.command("materialize")
def materialize(
    view: Annotated[str, typer.Argument(help="The feature view to load into the online store.", show_default=False)],
    end: Annotated[str, typer.Option(help="Load rows with timestamps before this time (2012-12-31[T06:00]).")],
    start: Annotated[
        str | None, typer.Option(help="From this time (default: where the last run ended; everything the first time).")
    ] = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Load the latest row per entity into the online store (incremental; a killed run resumes)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    import loopml.features as features

    with Progress(
        TextColumn(f"materializing {view}"), BarColumn(), MofNCompleteColumn(), console=output.stderr(), transient=json
    ) as bar:
        task = bar.add_task(view, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        job = features.materialize(view, end, start, project, progress)
    if json:
        output.print_json(asdict(job))
        return
    begin = "the beginning" if job.start_ms < -(10**15) else output.iso_time(job.start_ms)
    output.stdout().print(
        f"materialized {view} (version {job.version}) from {begin} to {output.iso_time(job.end_ms)}: "
        f"{job.rows} entities written to {job.store}"
    )


@app.command("list")
def list_definitions(project: ProjectOption = None, json: JsonOption = False) -> None:
    """The current version of every definition."""
    import loopml.features as features

    found = features.list_definitions(project)
    if json:
        output.print_json([asdict(d) for d in found])
        return
    output.table(
        None,
        ["kind", "name", "version", "digest", "created", "by"],
        [(d.kind, d.name, d.version, d.digest[:12], output.iso_time(d.created_at), d.created_by) for d in found],
    )


@app.command("show")
def show(
    kind: Annotated[str, typer.Argument(help="entity, feature_view, on_demand_view or feature_service.")],
    name: Annotated[str, typer.Argument(help="Its name.", show_default=False)],
    version: Annotated[int | None, typer.Option(min=1, help="A past version (default: the current one).")] = None,
    project: ProjectOption = None,
) -> None:
    """One definition as stored (JSON)."""
    import loopml.features as features

    found = features.definition(kind, name, version, project)
    output.print_json(asdict(found))
