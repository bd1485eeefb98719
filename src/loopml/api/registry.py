"""Registry operations: registered models, versions, aliases, search and resolve."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from loopml.api.codecs import arguments_codec, listed, one, paged
from loopml.api.fields import INT32, Integer, Key, Name, Text
from loopml.api.operation import Operation, Request
from loopml.api.tracking import OrderBy, PageToken, Values
from loopml.domain import AliasChange, ModelVersion, Page, RegisteredModel, wire
from loopml.domain.search import MAX_RESULTS

ModelName = Annotated[str, Field(min_length=1, max_length=250)]
AliasName = Annotated[str, Field(min_length=1, max_length=64)]
VersionNumber = Annotated[int, Field(ge=1, le=INT32)]
Reason = Annotated[str, Field(max_length=2000)]

MODEL = "model's project"


class SearchQuery(Request):
    filter: Annotated[str, Field(max_length=8000)] | None = None
    order_by: OrderBy | None = None
    max_results: Annotated[int, Field(ge=1, le=MAX_RESULTS)] = 1000
    page_token: PageToken | None = None


class CreateModel(Request):
    name: Name
    project: Name | None = None
    description: Text | None = None
    tags: Values | None = None
    exist_ok: bool = False
    """Return the model if it already exists in that project (get-or-create) instead of failing."""


class ModelPath(Request):
    name: ModelName


class UpdateModel(Request):
    name: ModelName
    description: Text | None = None
    tags: Values | None = None


class SetAlias(Request):
    name: ModelName
    alias: AliasName
    version: Annotated[Integer, Field(ge=1, le=INT32)]
    reason: Reason | None = None
    override_reason: Reason | None = None
    """An admin moving an alias that requires a passed gate to a version without one says why (audited)."""


class AliasHistory(Request):
    name: ModelName
    limit: Annotated[int, Field(ge=1, le=MAX_RESULTS)] = 100


class ModelTag(Request):
    name: ModelName
    key: Key


class VersionTag(Request):
    name: ModelName
    version: VersionNumber
    key: Key


class AliasPath(Request):
    name: ModelName
    alias: AliasName


class DeleteAlias(Request):
    name: ModelName
    alias: AliasName
    reason: Reason | None = None


class ListVersions(SearchQuery):
    name: ModelName


class CreateVersion(Request):
    """A version is made from a model a run logged, never from a path on the server or a URL."""

    name: ModelName
    run_id: Annotated[str, Field(max_length=64)]
    artifact_path: Annotated[str, Field(min_length=1, max_length=1024)]
    manifest_digest: Annotated[str, Field(max_length=64)]
    flavor: Annotated[str, Field(min_length=1, max_length=64)]
    signature: dict[str, Any] | None = None
    description: Text | None = None
    tags: Values | None = None


class VersionPath(Request):
    name: ModelName
    version: VersionNumber


class UpdateVersion(Request):
    name: ModelName
    version: VersionNumber
    status: Literal["READY", "ARCHIVED"] | None = None
    description: Text | None = None
    tags: Values | None = None


class SearchVersions(Request):
    filter: Text | None = None
    order_by: OrderBy | None = None
    max_results: Annotated[Integer, Field(ge=1, le=MAX_RESULTS)] = 1000
    page_token: PageToken | None = None


class Resolve(Request):
    uri_or_name: Annotated[str, Field(alias="uri", min_length=1, max_length=400)]
    """`models:/name@alias`, `models:/name/3`, `models:/name@latest`, or a name with `alias_or_version`."""
    alias_or_version: Annotated[str, Field(max_length=64)] | None = None


_model = one("model", wire.registered_model_to_json, wire.registered_model_from_json)
_version = one("model_version", wire.model_version_to_json, wire.model_version_from_json)
_versions = paged("model_versions", wire.model_version_to_json, wire.model_version_from_json)


def _deleted(version: int, arguments: Any) -> dict[str, Any]:
    return {"deleted": {"name": arguments["name"], "alias": arguments["alias"], "version": version}}


def _deleted_version(_: None, arguments: Any) -> dict[str, Any]:
    return {"deleted": {"name": arguments["name"], "version": arguments["version"]}}


SEARCH_MODELS: Operation[Page[RegisteredModel]] = Operation(
    "search_models", "registry", "search_models", "viewer", "listing", MODEL, "GET", "/models", SearchQuery,
    paged("models", wire.registered_model_to_json, wire.registered_model_from_json), "models",
)  # fmt: skip
CREATE_MODEL: Operation[RegisteredModel] = Operation(
    "create_model", "registry", "create_model", "editor", "body", "body.project", "POST", "/models", CreateModel,
    _model, "models",
)  # fmt: skip
GET_MODEL: Operation[RegisteredModel] = Operation(
    "get_model", "registry", "get_model", "viewer", "path", MODEL, "GET", "/models/{name}", ModelPath, _model,
    "models",
)  # fmt: skip
UPDATE_MODEL: Operation[RegisteredModel] = Operation(
    "update_model", "registry", "update_model", "editor", "path", MODEL, "PATCH", "/models/{name}", UpdateModel,
    _model, "models",
)  # fmt: skip
DELETE_MODEL: Operation[None] = Operation(
    "delete_model", "registry", "delete_model", "editor", "path", MODEL, "DELETE", "/models/{name}", ModelPath,
    arguments_codec(lambda _, arguments: {"deleted": {"name": arguments["name"]}}, lambda _: None), "models",
    summary="Delete a registered model with its versions, aliases and tags (409 while a deployment serves it)",
)  # fmt: skip
DELETE_MODEL_TAG: Operation[RegisteredModel] = Operation(
    "delete_model_tag", "registry", "delete_model_tag", "editor", "path", MODEL,
    "DELETE", "/models/{name}/tags/{key:path}", ModelTag, _model, "models",
)  # fmt: skip
SET_MODEL_ALIAS: Operation[ModelVersion] = Operation(
    "set_model_alias", "registry", "set_alias", "editor", "path", MODEL,
    "PUT", "/models/{name}/aliases/{alias}", SetAlias, _version, "models",
)  # fmt: skip
GET_MODEL_ALIAS: Operation[ModelVersion] = Operation(
    "get_model_alias", "registry", "get_alias", "viewer", "path", MODEL,
    "GET", "/models/{name}/aliases/{alias}", AliasPath, _version, "models",
)  # fmt: skip
DELETE_MODEL_ALIAS: Operation[int] = Operation(
    "delete_model_alias", "registry", "delete_alias", "editor", "path", MODEL,
    "DELETE", "/models/{name}/aliases/{alias}", DeleteAlias,
    arguments_codec(_deleted, lambda body: int(body["deleted"]["version"])), "models",
)  # fmt: skip
MODEL_ALIAS_HISTORY: Operation[list[AliasChange]] = Operation(
    "model_alias_history", "registry", "alias_history", "viewer", "path", MODEL,
    "GET", "/models/{name}/alias-history", AliasHistory,
    listed("changes", wire.alias_change_to_json, wire.alias_change_from_json), "models",
    summary="Every move of the model's aliases, newest first, with actor and reason",
)  # fmt: skip
LIST_MODEL_VERSIONS: Operation[Page[ModelVersion]] = Operation(
    "list_model_versions", "registry", "search_versions", "viewer", "path", MODEL,
    "GET", "/models/{name}/versions", ListVersions, _versions, "model versions",
)  # fmt: skip
CREATE_MODEL_VERSION: Operation[ModelVersion] = Operation(
    "create_model_version", "registry", "create_version", "editor", "path", MODEL,
    "POST", "/models/{name}/versions", CreateVersion, _version, "model versions",
)  # fmt: skip
GET_MODEL_VERSION: Operation[ModelVersion] = Operation(
    "get_model_version", "registry", "get_version", "viewer", "path", MODEL,
    "GET", "/models/{name}/versions/{version}", VersionPath, _version, "model versions",
)  # fmt: skip
UPDATE_MODEL_VERSION: Operation[ModelVersion] = Operation(
    "update_model_version", "registry", "update_version", "editor", "path", MODEL,
    "PATCH", "/models/{name}/versions/{version}", UpdateVersion, _version, "model versions",
)  # fmt: skip
DELETE_MODEL_VERSION: Operation[None] = Operation(
    "delete_model_version", "registry", "delete_version", "editor", "path", MODEL,
    "DELETE", "/models/{name}/versions/{version}", VersionPath,
    arguments_codec(_deleted_version, lambda _: None), "model versions",
    summary="Delete a model version (409 while a deployment serves it or an alias points at it)",
)  # fmt: skip
DELETE_MODEL_VERSION_TAG: Operation[ModelVersion] = Operation(
    "delete_model_version_tag", "registry", "delete_version_tag", "editor", "path", MODEL,
    "DELETE", "/models/{name}/versions/{version}/tags/{key:path}", VersionTag, _version, "model versions",
)  # fmt: skip
SEARCH_MODEL_VERSIONS: Operation[Page[ModelVersion]] = Operation(
    "search_model_versions", "registry", "search_versions", "viewer", "listing", MODEL,
    "POST", "/model-versions/search", SearchVersions, _versions, "model versions",
)  # fmt: skip
RESOLVE_MODEL_VERSION: Operation[ModelVersion] = Operation(
    "resolve_model_version", "registry", "resolve", "viewer", "path", MODEL,
    "GET", "/model-versions/resolve", Resolve, _version, "model versions",
)  # fmt: skip

OPERATIONS = (
    SEARCH_MODELS,
    CREATE_MODEL,
    GET_MODEL,
    UPDATE_MODEL,
    DELETE_MODEL,
    DELETE_MODEL_TAG,
    SET_MODEL_ALIAS,
    GET_MODEL_ALIAS,
    DELETE_MODEL_ALIAS,
    MODEL_ALIAS_HISTORY,
    LIST_MODEL_VERSIONS,
    CREATE_MODEL_VERSION,
    GET_MODEL_VERSION,
    UPDATE_MODEL_VERSION,
    DELETE_MODEL_VERSION,
    DELETE_MODEL_VERSION_TAG,
    SEARCH_MODEL_VERSIONS,
    RESOLVE_MODEL_VERSION,
)
