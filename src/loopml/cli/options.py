"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of a table.")]
ProjectOption = Annotated[str | None, typer.Option(help="Project name (default: the default project).")]
MaxResultsOption = Annotated[int, typer.Option(min=1, max=50_000, help="Most runs to return.")]
