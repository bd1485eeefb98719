"""`loopml ui`: the web UI over the local store, without a server or a token, on 127.0.0.1 only."""

from __future__ import annotations

from typing import Annotated

import typer


def ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port on 127.0.0.1.")] = 5050,
) -> None:
    """Open the web UI over the embedded store (LOOPML_HOME): no login, reachable from this machine only."""
    from loopml.ui import run_embedded_ui  # FastAPI and uvicorn load only for this command

    run_embedded_ui(port)
