"""Models: registered models, a model's versions, aliases and alias history, and one version (signature,
package check, metrics, the data profile it was trained on, lineage from data to deployments)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from loopml.deploy import DeployService
from loopml.errors import ArtifactNotFound, NotFound
from loopml.monitoring import MonitoringService
from loopml.registry import RegistryService, check_package
from loopml.tracking import TrackingService
from loopml.ui.framework import Session, UiRoute, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

MANIFEST_FILE = "loopml-model.json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@router.get("/models")
def models(request: Request, session: Session, filter: str = "") -> Response:
    registry: RegistryService = request.app.state.registry
    found = registry.search_models(session.principal, filter=filter or None, max_results=500)
    return render(request, session, "models.html", models=found.items, filter=filter, more=found.next_page_token)


@router.get("/models/{name}")
def model(request: Request, session: Session, name: str) -> Response:
    registry: RegistryService = request.app.state.registry
    found = registry.get_model(session.principal, name)
    versions = registry.search_versions(session.principal, name=name, max_results=200).items
    history = registry.alias_history(session.principal, name, 100)
    return render(request, session, "model.html", model=found, versions=versions, history=history)


@router.get("/models/{name}/versions/{version}")
def model_version(request: Request, session: Session, name: str, version: int) -> Response:
    state = request.app.state
    registry: RegistryService = state.registry
    tracking: TrackingService = state.tracking
    monitoring: MonitoringService = state.monitoring
    deploy: DeployService = state.deploy
    found = registry.get_version(session.principal, name, version)
    run = tracking.get_run(session.principal, found.run_id)
    datasets = {d.digest: d for d in tracking.run_datasets(session.principal, found.run_id)}
    lineage_data = [(digest, role, datasets.get(digest)) for digest, role in found.datasets]
    records = {r.path: r for r in tracking.list_artifacts(session.principal, found.run_id, found.artifact_path)}
    package: Any = None
    package_error = None
    try:
        record, chunks = tracking.open_artifact(
            session.principal, found.run_id, f"{found.artifact_path}/{MANIFEST_FILE}"
        )
        if record.size > MAX_MANIFEST_BYTES:
            package_error = f"the manifest is {record.size} bytes; the page reads at most {MAX_MANIFEST_BYTES}"
        else:
            package = check_package(found, b"".join(chunks), records)
    except ArtifactNotFound:
        package_error = f"run {found.run_id} has no {found.artifact_path}/{MANIFEST_FILE}"
    try:
        profile: Any = monitoring.get_reference_profile(session.principal, name, version)
    except NotFound:
        profile = None
    serving = [
        (d, v)
        for d in deploy.list(session.principal)
        for v in d.versions
        if v.model == found.name and v.version == found.version
    ]
    return render(
        request,
        session,
        "model_version.html",
        version=found,
        run=run,
        lineage_data=lineage_data,
        package=package,
        package_error=package_error,
        profile=profile,
        serving=serving,
    )
