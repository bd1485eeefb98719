"""Model versions: create (from a run's logged model), get, update, list per model, search, resolve."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from loopml.domain.wire import model_version_to_json
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import Registry
from loopml.server.fields import INT32, Integer, Text
from loopml.server.routers.models import (
    FilterQuery,
    MaxResultsQuery,
    ModelName,
    OrderByQuery,
    PageTokenQuery,
    Values,
    page_json,
)

router = APIRouter(tags=["model versions"])

VersionNumber = Annotated[int, Path(ge=1, le=INT32)]


class CreateVersion(BaseModel):
    """A version is made from a model a run logged, never from a path on the server or a URL."""

    model_config = ConfigDict(extra="forbid")

    run_id: Annotated[str, Field(max_length=64)]
    artifact_path: Annotated[str, Field(min_length=1, max_length=1024)]
    manifest_digest: Annotated[str, Field(max_length=64)]
    flavor: Annotated[str, Field(min_length=1, max_length=64)]
    signature: dict[str, Any] | None = None
    description: Text | None = None
    tags: Values | None = None


class UpdateVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["READY", "ARCHIVED"] | None = None
    description: Text | None = None
    tags: Values | None = None


class SearchVersions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: Text | None = None
    order_by: Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=20)] | None = None
    max_results: Annotated[Integer, Field(ge=1, le=50_000)] = 1000
    page_token: Annotated[str, Field(max_length=200)] | None = None


@router.get("/models/{name}/versions")
def list_versions(
    name: ModelName,
    principal: CurrentPrincipal,
    registry: Registry,
    filter: FilterQuery = None,
    order_by: OrderByQuery = None,
    max_results: MaxResultsQuery = 1000,
    page_token: PageTokenQuery = None,
) -> dict[str, Any]:
    page = registry.search_versions(principal, filter, order_by, max_results, page_token, name=name)
    return page_json("model_versions", [model_version_to_json(v) for v in page.items], page.next_page_token)


@router.post("/models/{name}/versions")
def create_version(
    name: ModelName, body: CreateVersion, principal: CurrentPrincipal, registry: Registry
) -> dict[str, Any]:
    version = registry.create_version(
        principal,
        name,
        body.run_id,
        body.artifact_path,
        body.manifest_digest,
        body.flavor,
        body.signature,
        body.description,
        body.tags,
    )
    return {"model_version": model_version_to_json(version)}


@router.get("/models/{name}/versions/{version}")
def get_version(
    name: ModelName, version: VersionNumber, principal: CurrentPrincipal, registry: Registry
) -> dict[str, Any]:
    return {"model_version": model_version_to_json(registry.get_version(principal, name, version))}


@router.patch("/models/{name}/versions/{version}")
def update_version(
    name: ModelName, version: VersionNumber, body: UpdateVersion, principal: CurrentPrincipal, registry: Registry
) -> dict[str, Any]:
    updated = registry.update_version(principal, name, version, body.status, body.description, body.tags)
    return {"model_version": model_version_to_json(updated)}


@router.post("/model-versions/search")
def search_versions(body: SearchVersions, principal: CurrentPrincipal, registry: Registry) -> dict[str, Any]:
    page = registry.search_versions(principal, body.filter, body.order_by, body.max_results, body.page_token)
    return page_json("model_versions", [model_version_to_json(v) for v in page.items], page.next_page_token)


@router.get("/model-versions/resolve")
def resolve(
    principal: CurrentPrincipal,
    registry: Registry,
    uri: Annotated[str, Query(min_length=1, max_length=400)],
    alias_or_version: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """`uri`: `models:/name@alias`, `models:/name/3`, `models:/name@latest`, or a name with `alias_or_version`."""
    return {"model_version": model_version_to_json(registry.resolve(principal, uri, alias_or_version))}
