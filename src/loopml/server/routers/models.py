"""Registered models: create, get, update, search, and their aliases (set, get, delete)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from loopml.domain.wire import model_version_to_json, registered_model_to_json
from loopml.registry import RegistryService
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import Registry
from loopml.server.fields import INT32, Integer, Key, Name, Text

router = APIRouter(tags=["models"])

Values = Annotated[dict[Key, Text], Field(max_length=10_000)]
ModelName = Annotated[str, Path(min_length=1, max_length=250)]
AliasName = Annotated[str, Path(min_length=1, max_length=64)]
OrderByQuery = Annotated[list[Annotated[str, Field(max_length=500)]] | None, Query(max_length=20)]
MaxResultsQuery = Annotated[int, Query(ge=1, le=50_000)]
PageTokenQuery = Annotated[str | None, Query(max_length=200)]
FilterQuery = Annotated[str | None, Query(max_length=8000)]
Reason = Annotated[str, Field(max_length=2000)]


class CreateModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    project: Name | None = None
    description: Text | None = None
    tags: Values | None = None
    exist_ok: bool = False
    """Return the model if it already exists in that project (get-or-create) instead of failing."""


class UpdateModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: Text | None = None
    tags: Values | None = None


class SetAlias(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Annotated[Integer, Field(ge=1, le=INT32)]
    reason: Reason | None = None


def page_json(key: str, items: list[dict[str, Any]], next_page_token: str | None) -> dict[str, Any]:
    return {key: items, "next_page_token": next_page_token}


@router.get("/models")
def search_models(
    principal: CurrentPrincipal,
    registry: Registry,
    filter: FilterQuery = None,
    order_by: OrderByQuery = None,
    max_results: MaxResultsQuery = 1000,
    page_token: PageTokenQuery = None,
) -> dict[str, Any]:
    page = registry.search_models(principal, filter, order_by, max_results, page_token)
    return page_json("models", [registered_model_to_json(m) for m in page.items], page.next_page_token)


@router.post("/models")
def create_model(body: CreateModel, principal: CurrentPrincipal, registry: Registry) -> dict[str, Any]:
    create = RegistryService.get_or_create_model if body.exist_ok else RegistryService.create_model
    model = create(registry, principal, body.name, body.project, body.description, body.tags)
    return {"model": registered_model_to_json(model)}


@router.get("/models/{name}")
def get_model(name: ModelName, principal: CurrentPrincipal, registry: Registry) -> dict[str, Any]:
    return {"model": registered_model_to_json(registry.get_model(principal, name))}


@router.patch("/models/{name}")
def update_model(name: ModelName, body: UpdateModel, principal: CurrentPrincipal, registry: Registry) -> dict[str, Any]:
    model = registry.update_model(principal, name, body.description, body.tags)
    return {"model": registered_model_to_json(model)}


@router.put("/models/{name}/aliases/{alias}")
def set_alias(
    name: ModelName, alias: AliasName, body: SetAlias, principal: CurrentPrincipal, registry: Registry
) -> dict[str, Any]:
    version = registry.set_alias(principal, name, alias, body.version, body.reason)
    return {"model_version": model_version_to_json(version)}


@router.get("/models/{name}/aliases/{alias}")
def get_alias(name: ModelName, alias: AliasName, principal: CurrentPrincipal, registry: Registry) -> dict[str, Any]:
    return {"model_version": model_version_to_json(registry.get_alias(principal, name, alias))}


@router.delete("/models/{name}/aliases/{alias}")
def delete_alias(
    name: ModelName,
    alias: AliasName,
    principal: CurrentPrincipal,
    registry: Registry,
    reason: Annotated[str | None, Query(max_length=2000)] = None,
) -> dict[str, Any]:
    previous = registry.delete_alias(principal, name, alias, reason)
    return {"deleted": {"name": name, "alias": alias, "version": previous}}
