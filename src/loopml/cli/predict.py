"""`loopml predict MODEL_REF INPUT OUTPUT`: score a Parquet or CSV file in chunks, with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loopml.cli import output
from loopml.cli.app import state


def predict(
    ctx: typer.Context,
    model_ref: Annotated[
        str,
        typer.Argument(
            help="bike-demand@champion, models:/bike-demand/3, or a model package directory.", show_default=False
        ),
    ],
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="A .parquet or .csv file.", show_default=False)],
    output_path: Annotated[
        Path, typer.Argument(metavar="OUTPUT", help="The Parquet file to write.", show_default=False)
    ],
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows scored per chunk (memory follows it).")] = 100_000,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Chunks predicted at once (default: one per CPU, at most 8).")
    ] = None,
    trust_pickle: Annotated[
        bool, typer.Option(help="Allow loading a pickle-based model (its hash is checked first).")
    ] = False,
) -> None:
    """Score INPUT with a registered model into OUTPUT (the input columns plus `prediction`), in chunks."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from loopml.serving import count_rows, score_file

    if Path(model_ref).is_dir():  # a package directory needs no store: verified and loaded as it is
        from loopml.registry import load_model

        model = load_model(model_ref, trust_pickle=trust_pickle)
    else:
        model = state(ctx).client().models.load(model_ref, trust_pickle=trust_pickle)
    total = count_rows(input_path) if input_path.is_file() else None
    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"), TimeElapsedColumn())
    with Progress(*columns, console=output.stderr(), transient=False) as bar:
        task = bar.add_task("scoring", total=total)
        result = score_file(
            model,
            input_path,
            output_path,
            chunk_rows=chunk_rows,
            progress=lambda rows: bar.advance(task, rows),
            workers=workers,
        )
    output.stdout().print(
        f"scored {result.rows:,} rows in {result.chunks} chunks ({result.seconds:.2f} s) -> {result.destination}",
        markup=False,
    )
