"""The REST routes of the operation table: one route per operation, made by one endpoint factory.

A generic endpoint validates the path, the body (or query string) with the operation's request model, calls
`getattr(service, op.method)(principal, **arguments)` and encodes the answer with the operation's codec. An
operation declared `endpoint="custom"` (a streamed body, the metric ingest hot path) gets the hand-written
endpoint registered for its name, on the path and method the table gives.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, create_model
from pydantic.fields import FieldInfo

from loopml.api import OPERATIONS, Operation
from loopml.domain import Principal
from loopml.server.auth import current_principal
from loopml.server.errors import ERROR_RESPONSES, declared_error
from loopml.server.responses import OrjsonResponse

__all__ = ["Custom", "operation_router"]

_KEYWORD = inspect.Parameter.KEYWORD_ONLY
_BODY, _QUERY, _REQUEST, _PRINCIPAL = "loopml_body", "loopml_query", "loopml_request", "loopml_principal"


@dataclass(frozen=True)
class Custom:
    """A hand-written endpoint of a table operation, with what it adds to its route (`openapi_extra`...)."""

    endpoint: Callable[..., Any]
    route: Mapping[str, Any] = field(default_factory=dict)


def operation_router(custom: Mapping[str, Custom]) -> APIRouter:
    """Every operation of `OPERATIONS` as a route; `custom` holds the endpoints of the `custom` ones."""
    wanted = {name for name, op in OPERATIONS.items() if op.endpoint == "custom"}
    if wanted != set(custom):
        raise ValueError(f"custom endpoints do not match the table: missing {wanted - set(custom)}, "
                         f"not in the table {set(custom) - wanted}")  # fmt: skip
    router = APIRouter()
    for op in OPERATIONS.values():
        route: dict[str, Any] = {"responses": _responses(op)}
        if op.response.media_type == "text/html":
            route["response_class"] = HTMLResponse
        elif op.response.media_type != "application/json":  # a binary body of its own codec
            route["response_class"] = Response
            binary = {"schema": {"type": "string", "format": "binary"}}
            route["responses"] = route["responses"] | {200: {"content": {op.response.media_type: binary}}}
        if op.name in custom:
            endpoint = custom[op.name].endpoint
            extra = dict(custom[op.name].route)
            route |= extra | {"responses": route["responses"] | extra.get("responses", {})}
        else:
            endpoint = _endpoint(op)
        router.add_api_route(
            op.path, endpoint, methods=[op.http], name=op.name, tags=[op.tag], summary=op.summary or None, **route
        )
    return router


def _responses(op: Operation[Any]) -> dict[int | str, dict[str, Any]]:
    extra: dict[int | str, dict[str, Any]] = {code: declared_error(HTTPStatus(code).phrase) for code in op.errors}
    return {**ERROR_RESPONSES, **extra}


def _part(op: Operation[Any], fields: dict[str, FieldInfo]) -> type[BaseModel]:
    """The body (or query) model of `op`: its request model without the path fields."""
    if len(fields) == len(op.request.model_fields) and op.has_body:
        return op.request  # the model itself, with its own validators
    config = ConfigDict(extra="forbid" if op.has_body else "ignore", protected_namespaces=())
    definitions: dict[str, Any] = {name: (info.annotation, info) for name, info in fields.items()}
    return create_model(op.request.__name__, __config__=config, **definitions)


def _endpoint(op: Operation[Any]) -> Callable[..., Response]:
    request_model = op.request
    path_names = set(op.path_fields)
    path_fields = {
        name: info for name, info in request_model.model_fields.items() if (info.alias or name) in path_names
    }
    rest = {name: info for name, info in request_model.model_fields.items() if name not in path_fields}
    parameters = [
        inspect.Parameter(_REQUEST, _KEYWORD, annotation=Request),
        inspect.Parameter(_PRINCIPAL, _KEYWORD, annotation=Annotated[Principal, Depends(current_principal)]),
    ]
    for name, info in path_fields.items():
        annotation = Annotated.__class_getitem__((info.annotation, *info.metadata, Path()))  # type: ignore[attr-defined]
        parameters.append(inspect.Parameter(info.alias or name, _KEYWORD, annotation=annotation))
    part: type[BaseModel] | None = None
    if rest or (op.has_body and not request_model.body_required):
        part = _part(op, rest)
        if not op.has_body:
            parameters.append(inspect.Parameter(_QUERY, _KEYWORD, annotation=Annotated[part, Query()]))
        elif request_model.body_required:
            parameters.append(inspect.Parameter(_BODY, _KEYWORD, annotation=part))
        else:
            parameters.append(inspect.Parameter(_BODY, _KEYWORD, annotation=part | None, default=None))
    by_wire = {info.alias or name: name for name, info in path_fields.items()}
    service_name, method_name, adapt, codec = op.service, op.method, op.adapt, op.response
    html = codec.media_type == "text/html"
    binary = not html and codec.media_type != "application/json"

    def endpoint(**params: Any) -> Response:
        values = {by_wire[key]: value for key, value in params.items() if key in by_wire}
        given = params.get(_BODY) if op.has_body else params.get(_QUERY)
        if given is not None:
            values |= {name: getattr(given, name) for name in rest}
        arguments = request_model.model_construct(**values).arguments()
        service = getattr(params[_REQUEST].app.state, service_name)
        result = getattr(service, method_name)(params[_PRINCIPAL], **arguments)
        if adapt is not None:
            result = adapt(result)
        answer = codec.encode(result, arguments)
        # A response object, not a dict: FastAPI would otherwise re-validate and re-encode every value (of up to
        # 50,000 runs in a search) in Python before orjson sees them.
        if binary:
            return Response(answer, media_type=codec.media_type)
        return HTMLResponse(answer) if html else OrjsonResponse(answer)

    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = op.name
    endpoint.__doc__ = op.summary or None
    return endpoint
