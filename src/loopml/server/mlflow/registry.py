"""MLflow's model registry endpoints (registered-models, model-versions) over `RegistryService`.

A registered model is a loopml registered model and a version a loopml version, so aliases, gates,
deployments and the audit log apply to what an MLflow client registers. MLflow names versions as strings;
stages are kept for old clients as the version tag `mlflow.stage` (Archived also archives the version).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from loopml.domain import ModelVersion, Principal, Role
from loopml.domain.models import MANIFEST
from loopml.errors import InvalidInput
from loopml.registry import LoggedModelService, RegistryService
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import LoggedModels, Registry, Tracking
from loopml.server.mlflow.convert import run_artifact_uri
from loopml.server.mlflow.protocol import Message, MlflowResponse, MlflowRoute, read_message
from loopml.server.mlflow.registry_filters import model_filter, model_order_by, version_filter, version_order_by
from loopml.server.mlflow.registry_json import (
    logged_model_artifact_uri,
    logged_model_id,
    model_to_json,
    version_to_json,
)
from loopml.tracking import TrackingService

router = APIRouter(route_class=MlflowRoute, default_response_class=MlflowResponse)

_MAX_SEARCH = 1000  # MLflow's own page limit for registry searches


def _pairs(message: Message, name: str) -> dict[str, str]:
    return {item.required_string("key"): item.string("value") or "" for item in message.messages(name)}


def _version(message: Message) -> int:
    """MLflow sends a version number as a string ("3"); a decimal string or a number is accepted."""
    number = message.int64("version", required=True)
    assert number is not None
    return number


def _max_results(message: Message) -> int:
    value = message.int64("max_results", default=100)
    assert value is not None
    if not 1 <= value <= _MAX_SEARCH:
        raise InvalidInput(f"Invalid value {value} for parameter 'max_results': it must be from 1 to {_MAX_SEARCH}")
    return value


# -- registered models ---------------------------------------------------------------------------------


@router.post("/registered-models/create")
async def create_registered_model(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    model = await run_in_threadpool(
        registry.create_model,
        principal,
        message.required_string("name"),
        None,
        message.string("description"),
        _pairs(message, "tags"),
    )
    return {"registered_model": model_to_json(model)}


@router.get("/registered-models/get")
async def get_registered_model(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    model = await run_in_threadpool(registry.get_model, principal, message.required_string("name"))
    return {"registered_model": model_to_json(model)}


@router.patch("/registered-models/update")
async def update_registered_model(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    model = await run_in_threadpool(
        registry.update_model, principal, message.required_string("name"), message.string("description")
    )
    return {"registered_model": model_to_json(model)}


@router.delete("/registered-models/delete")
async def delete_registered_model(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    await run_in_threadpool(registry.delete_model, principal, message.required_string("name"))
    return {}


@router.get("/registered-models/search")
async def search_registered_models(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    page = await run_in_threadpool(
        registry.search_models,
        principal,
        model_filter(message.string("filter")),
        model_order_by(message.strings("order_by")),
        _max_results(message),
        message.string("page_token"),
    )
    body: dict[str, Any] = {"registered_models": [model_to_json(m) for m in page.items]}
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return body


@router.post("/registered-models/set-tag")
async def set_registered_model_tag(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    tags = {message.required_string("key"): message.string("value") or ""}
    await run_in_threadpool(registry.update_model, principal, message.required_string("name"), None, tags)
    return {}


@router.delete("/registered-models/delete-tag")
async def delete_registered_model_tag(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    await run_in_threadpool(
        registry.delete_model_tag, principal, message.required_string("name"), message.required_string("key")
    )
    return {}


@router.post("/registered-models/alias")
async def set_registered_model_alias(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    await run_in_threadpool(
        registry.set_alias,
        principal,
        message.required_string("name"),
        message.required_string("alias"),
        _version(message),
    )
    return {}


@router.delete("/registered-models/alias")
async def delete_registered_model_alias(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    await run_in_threadpool(
        registry.delete_alias, principal, message.required_string("name"), message.required_string("alias")
    )
    return {}


@router.get("/registered-models/alias")
async def get_model_version_by_alias(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    version = await run_in_threadpool(
        registry.get_alias, principal, message.required_string("name"), message.required_string("alias")
    )
    return {"model_version": version_to_json(version)}


@router.post("/registered-models/get-latest-versions")
@router.get("/registered-models/get-latest-versions", include_in_schema=False)
async def get_latest_versions(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    name = message.required_string("name")
    stages = {s.lower() for s in message.strings("stages")}
    page = await run_in_threadpool(registry.search_versions, principal, None, None, 50_000, None, name)
    latest: dict[str, ModelVersion] = {}
    for version in page.items:  # newest first: the first of each stage is its latest
        stage = version_to_json(version)["current_stage"]
        if (not stages or stage.lower() in stages) and stage not in latest:
            latest[stage] = version
    return {"model_versions": [version_to_json(v) for v in latest.values()]}


# -- model versions -----------------------------------------------------------------------------------


def _register(
    registry: RegistryService,
    tracking: TrackingService,
    logged: LoggedModelService,
    principal: Principal,
    name: str,
    source: str,
    run_id: str | None,
    model_id: str | None,
    description: str | None,
    tags: dict[str, str],
) -> ModelVersion:
    """A version from an MLflow 3 logged model (`models:/m-<id>` or `model_id`), or from a loopml package a
    run logged (`runs:/<run>/<path>`)."""
    principal.require(Role.EDITOR)  # before anything is read: a viewer learns nothing about the source
    if not model_id and source.startswith("models:/m-"):
        model_id = source.removeprefix("models:/").split("/", 1)[0]
    if model_id:
        record = logged.get(principal, model_id)
        if record.manifest_digest is None or record.flavor is None:
            why = record.status_message or f"it is {record.status.value}, not finalized READY"
            raise InvalidInput(f"logged model {model_id} cannot be registered in loopml: {why}")
        run, path, digest = record.run_id, record.package_prefix, record.manifest_digest
    elif source.startswith("runs:/"):
        run, _, path = source.removeprefix("runs:/").partition("/")
        path = path.strip("/")
        if run_id and run_id != run:
            raise InvalidInput(f"source {source!r} names run {run}, but run_id is {run_id}")
        digest = tracking.open_artifact(principal, run, f"{path}/{MANIFEST}")[0].digest
    else:
        raise InvalidInput(
            f"loopml registers versions from models logged to a run (models:/m-<id> from MLflow 3's log_model, "
            f"or runs:/<run_id>/<path> of a loopml package), not from {source!r}"
        )
    _, chunks = tracking.open_artifact(principal, run, f"{path}/{MANIFEST}")
    try:
        manifest = orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise InvalidInput(f"{path}/{MANIFEST} of run {run} is not JSON: not a loopml model package") from None
    if not isinstance(manifest, dict):
        raise InvalidInput(f"{path}/{MANIFEST} of run {run} is not a loopml model package manifest")
    return registry.create_version(
        principal,
        name,
        run,
        path,
        digest,
        str(manifest.get("flavor", "")),
        manifest.get("signature"),
        description,
        tags,
    )


@router.post("/model-versions/create")
async def create_model_version(
    request: Request, principal: CurrentPrincipal, registry: Registry, tracking: Tracking, logged: LoggedModels
) -> Any:
    message = await read_message(request)
    version = await run_in_threadpool(
        _register,
        registry,
        tracking,
        logged,
        principal,
        message.required_string("name"),
        message.string("source") or "",
        message.string("run_id"),
        message.string("model_id"),
        message.string("description"),
        _pairs(message, "tags"),
    )
    return {"model_version": version_to_json(version)}


@router.get("/model-versions/get")
async def get_model_version(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    version = await run_in_threadpool(
        registry.get_version, principal, message.required_string("name"), _version(message)
    )
    return {"model_version": version_to_json(version)}


@router.patch("/model-versions/update")
async def update_model_version(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    version = await run_in_threadpool(
        registry.update_version,
        principal,
        message.required_string("name"),
        _version(message),
        None,
        message.string("description"),
    )
    return {"model_version": version_to_json(version)}


@router.delete("/model-versions/delete")
async def delete_model_version(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    name, version = message.required_string("name"), _version(message)
    await run_in_threadpool(registry.delete_version, principal, name, version, drop_aliases=True)  # as MLflow does
    return {}


@router.get("/model-versions/search")
async def search_model_versions(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    page = await run_in_threadpool(
        registry.search_versions,
        principal,
        version_filter(message.string("filter")),
        version_order_by(message.strings("order_by")),
        _max_results(message),
        message.string("page_token"),
    )
    body: dict[str, Any] = {"model_versions": [version_to_json(v) for v in page.items]}
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return body


@router.post("/model-versions/set-tag")
async def set_model_version_tag(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    tags = {message.required_string("key"): message.string("value") or ""}
    await run_in_threadpool(
        registry.update_version, principal, message.required_string("name"), _version(message), None, None, tags
    )
    return {}


@router.delete("/model-versions/delete-tag")
async def delete_model_version_tag(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    await run_in_threadpool(
        registry.delete_version_tag,
        principal,
        message.required_string("name"),
        _version(message),
        message.required_string("key"),
    )
    return {}


@router.post("/model-versions/transition-stage")
async def transition_model_version_stage(request: Request, principal: CurrentPrincipal, registry: Registry) -> Any:
    message = await read_message(request)
    version = await run_in_threadpool(
        registry.transition_stage,
        principal,
        message.required_string("name"),
        _version(message),
        message.required_string("stage"),
        message.boolean("archive_existing_versions"),
    )
    return {"model_version": version_to_json(version)}


def _download_uri(
    registry: RegistryService, tracking: TrackingService, logged: LoggedModelService, principal: Principal,
    name: str, number: int,
) -> str:  # fmt: skip
    version = registry.get_version(principal, name, number)
    model_id = logged_model_id(version)
    if model_id is not None:
        record = logged.get(principal, model_id)
        return logged_model_artifact_uri(record.experiment_id, model_id)
    run = tracking.get_run(principal, version.run_id)
    return f"{run_artifact_uri(run.experiment_id, run.id)}/{version.artifact_path}"


@router.get("/model-versions/get-download-uri")
async def get_model_version_download_uri(
    request: Request, principal: CurrentPrincipal, registry: Registry, tracking: Tracking, logged: LoggedModels
) -> Any:
    message = await read_message(request)
    uri = await run_in_threadpool(
        _download_uri, registry, tracking, logged, principal, message.required_string("name"), _version(message)
    )
    return {"artifact_uri": uri}
