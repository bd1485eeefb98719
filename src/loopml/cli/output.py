"""How commands print: Rich tables for people, one orjson document on stdout for `--json`."""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from loopml.domain import Run

PIPED_WIDTH = 10_000
UNWRAPPED = frozenset({"start time", "created", "revoked", "time"})


def stdout() -> Console:
    """Built per call, so it follows the current sys.stdout (test runners swap it). Piped output is not
    folded to 80 columns: a table in a file or a pager keeps one line per row."""
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=PIPED_WIDTH if piped else None)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(document: Any) -> None:
    """One JSON document on stdout (NaN/inf already encoded as strings by the wire helpers)."""
    typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


def iso_time(ms: int | None) -> str:
    if ms is None:
        return ""
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """The first column (an id) and times are never wrapped, so they can be copied; others fold."""
    grid = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        grid.add_column(column, overflow="fold", no_wrap=index == 0 or column in UNWRAPPED)
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    stdout().print(grid)


def pairs(title: str, values: dict[str, Any]) -> None:
    """A two-column key/value table (params, metrics, tags), or a dim line when empty."""
    if not values:
        stdout().print(f"[dim]{title}: none[/dim]")
        return
    table(title, ["key", "value"], sorted(values.items()))


def runs_table(runs: Sequence[Run]) -> None:
    """Run id, name, status, start time, then every metric and param column present in `runs`."""
    metrics = sorted({key for run in runs for key in run.metrics})
    params = sorted({key for run in runs for key in run.params})
    columns = ["run id", "name", "status", "start time"]
    columns += [f"metrics.{key}" for key in metrics] + [f"params.{key}" for key in params]
    rows = (
        [run.id, run.name, run.status.value, iso_time(run.start_time)]
        + [number(run.metrics.get(key)) for key in metrics]
        + [run.params.get(key, "") for key in params]
        for run in runs
    )
    table(None, columns, rows)


def number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"
