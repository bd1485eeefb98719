"""Mount the UI on the server's app (`install_ui`), and `loopml ui`: the UI over a local store, no login."""

from __future__ import annotations

import getpass
import os

from fastapi import APIRouter, FastAPI

from loopml.domain import Principal, Role
from loopml.ui.framework import UiState
from loopml.ui.pages import (
    audit,
    charts,
    compare,
    deployments,
    experiments,
    login,
    models,
    monitoring,
    pipelines,
    run,
    runs,
    static,
)
from loopml.ui.session import SessionSigner

__all__ = ["PAGES", "install_ui", "run_embedded_ui"]

PAGES: list[APIRouter] = [
    login.router,
    static.router,
    experiments.router,
    runs.router,
    run.router,
    compare.router,
    charts.router,
    models.router,
    deployments.router,
    monitoring.router,
    audit.router,
    pipelines.router,
]
"""Every router of the UI, in the order they are mounted; a new section adds its module's router here."""


def install_ui(app: FastAPI, embedded: bool = False) -> FastAPI:
    """Add the UI's pages to `app` (built by `loopml.server.build_app`). `embedded`: no login, every request acts
    as the local user, a global admin (only for `loopml ui`, which binds 127.0.0.1)."""
    principal = None
    if embedded:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # pragma: no cover - a uid without a passwd entry (containers)
            user = f"uid{os.getuid()}"
        principal = Principal(actor=f"local:{user}", role=Role.ADMIN, project=None)
    app.state.ui = UiState(SessionSigner(), principal)
    for router in PAGES:
        app.include_router(router)
    return app


def run_embedded_ui(port: int) -> None:
    """Serve the UI over the local store (LOOPML_HOME or LOOPML_DATABASE_URL) on 127.0.0.1 only, without login."""
    import uvicorn

    from loopml.server import create_app
    from loopml.settings import load_settings

    settings = load_settings()
    if not settings.database_url or not settings.artifact_root:
        settings.home.mkdir(parents=True, exist_ok=True)
    app = install_ui(create_app(settings), embedded=True)
    print(f"loopml ui: http://127.0.0.1:{port}/ (local store, no login; only this machine can connect)", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
