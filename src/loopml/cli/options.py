"""Options shared by several commands."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")]
ProjectOption = Annotated[str | None, typer.Option(help="Project name (default: the default project).")]
MaxResultsOption = Annotated[int, typer.Option(min=1, max=50_000, help="Most runs to return.")]


class View(str, enum.Enum):
    """Which of the live and deleted runs or experiments to show (MLflow's ViewType)."""

    active_only = "active_only"
    deleted_only = "deleted_only"
    all = "all"


ViewOption = Annotated[
    View, typer.Option("--view-type", help="Live ones (active_only), deleted ones (deleted_only), or all.")
]
