"""`loopml evaluate` <-> `client.evaluations.evaluate`, `loopml gate` <-> `client.gates.check`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from loopml.cli import output
from loopml.cli.app import state
from loopml.cli.options import JsonOption
from loopml.domain.evaluation import Evaluation, evaluation_to_json
from loopml.errors import InvalidInput

ModelArgument = Annotated[
    str, typer.Argument(help="The version: models:/NAME@ALIAS, models:/NAME/VERSION, NAME@ALIAS.")
]
DataOption = Annotated[Path | None, typer.Option("--data", help="Labelled rows: a .parquet, .pq or .csv file.")]
LabelOption = Annotated[str | None, typer.Option("--label", help="The column of true values.")]
SliceOption = Annotated[
    list[str] | None, typer.Option("--slice", help="A column to report metrics per group of; repeatable.")
]
TaskOption = Annotated[
    str | None, typer.Option("--task", help="regression, binary or multiclass (default: inferred from the model).")
]


def print_evaluation(evaluation: Evaluation) -> None:
    console = output.stdout()
    console.print(
        f"[bold]evaluation[/bold] {evaluation.id}  {evaluation.name}/{evaluation.version}  {evaluation.task}  "
        f"{evaluation.rows} rows  label {evaluation.label}  data {evaluation.dataset_digest[:12]}"
    )
    compared = {c.metric: c for c in evaluation.comparison}
    columns = ["metric", "value"]
    if compared:
        columns += [f"v{evaluation.baseline_version}", "difference", "95% interval"]
    rows = []
    for metric, value in evaluation.metrics.items():
        row: list[object] = [metric, output.number(value)]
        if compared and metric in compared:
            c = compared[metric]
            row += [output.number(c.baseline), f"{c.difference:+.6g}", f"[{c.low:+.6g}, {c.high:+.6g}]"]
        rows.append(row)
    output.table(None, columns, rows)
    for column, groups in evaluation.slices.items():
        metrics = [m for m in next(iter(groups.values()), {}) if m != "rows"]
        output.table(
            f"by {column}",
            [column, "rows", *metrics],
            (
                [group, int(values["rows"]), *(output.number(values.get(m)) for m in metrics)]
                for group, values in groups.items()
            ),
        )


def evaluate(
    ctx: typer.Context,
    model: ModelArgument,
    data: DataOption = None,
    label: LabelOption = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="@ALIAS or a version of the same model, scored on the same rows.")
    ] = None,
    slice_: SliceOption = None,
    task: TaskOption = None,
    resamples: Annotated[
        int, typer.Option(min=0, max=10_000, help="Bootstrap resamples of the baseline comparison.")
    ] = 200,
    json: JsonOption = False,
) -> None:
    """Score a model version on labelled rows here and store the evaluation on the version."""
    if data is None or label is None:
        raise InvalidInput("give the labelled rows and their label column: --data FILE --label COLUMN")
    client = state(ctx).client()
    found = client.evaluations.evaluate(
        model, data, label, task=task, slices=slice_ or (), baseline=baseline, resamples=resamples
    )
    if json:
        output.print_json(evaluation_to_json(found))
        return
    print_evaluation(found)


def gate(
    ctx: typer.Context,
    model: ModelArgument,
    policy: Annotated[Path, typer.Option("--policy", help="The gate policy (YAML).")],
    data: DataOption = None,
    label: LabelOption = None,
    slice_: SliceOption = None,
    task: TaskOption = None,
    evaluation: Annotated[
        str | None, typer.Option("--evaluation", help="Judge this evaluation (default: the version's newest).")
    ] = None,
    format_: Annotated[
        Literal["table", "markdown", "json"], typer.Option("--format", help="table, markdown or json.")
    ] = "table",
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the markdown report here (for a pull-request comment).")
    ] = None,
) -> None:
    """Judge a model version against a gate policy and store the result. Exit 0: passed; 1: failed; 2: the
    policy or the call is wrong (the message names the line)."""
    from loopml.gates import render_json, render_markdown, render_table

    if (data is None) != (label is None):
        raise InvalidInput("--data and --label go together")
    client = state(ctx).client()
    result = client.gates.check(
        model, policy, data=data, label=label, task=task, slices=slice_ or (), evaluation=evaluation
    )
    if report is not None:
        report.write_text(render_markdown(result))
    if format_ == "json":
        typer.echo(render_json(result))
    elif format_ == "markdown":
        typer.echo(render_markdown(result), nl=False)
    else:
        output.stdout().print(render_table(result))
    if not result.passed:
        raise typer.Exit(1)
