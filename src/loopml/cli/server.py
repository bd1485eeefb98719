"""`loopml server`: the REST API on this machine (127.0.0.1 unless --host says otherwise)."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.settings import load_settings


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Interface to bind (default: 127.0.0.1, or LOOPML_HOST).", show_default=False),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="TCP port (default: 8080, or LOOPML_PORT).", show_default=False),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Metadata store URL (default: SQLite under LOOPML_HOME).", show_default=False),
    ] = None,
    artifact_root: Annotated[
        str | None,
        typer.Option(help="Artifact store root URL (default: under LOOPML_HOME).", show_default=False),
    ] = None,
) -> None:
    """Serve the loopml API; on a store with no token, print a new admin token once."""
    overrides: dict[str, object] = {}
    if database_url is not None:
        overrides["database_url"] = database_url
    if artifact_root is not None:
        overrides["artifact_root"] = artifact_root
    settings = load_settings(**overrides)
    from loopml.server import run_server  # FastAPI and uvicorn load only for this command

    run_server(settings, host or settings.host, port or settings.port)
