"""THE mapping from the loopml error tree to HTTP. Every error body is

    {"error": {"code": "<stable code>", "message": "<what to fix>"}}

    NotFound                         404
    InvalidInput, AlreadyExists      400   (PayloadTooLarge: 413)
    AuthenticationRequired           401   (with WWW-Authenticate: Bearer)
    PermissionDenied                 403
    ArtifactCorrupted                400   the only way the API raises it is an upload whose bytes do not
                                           match the client's X-Content-SHA256: the client's data is bad,
                                           and sending it again is the fix
    IntegrityError (other)           409
    StoreUnavailable                 503   the server's metadata store is unreachable or unmigrated
    RemoteError, other LoopmlError   500
    request validation (pydantic)    400   invalid_request, naming each field (loc: msg)
    malformed JSON                   400   invalid_json
    unknown route / method           404 / 405 (not_found / method_not_allowed)
    any other exception              500   internal_error, generic message, logged with its traceback

A deterministic client mistake is never a 5xx.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from loopml.errors import (
    AlreadyExists,
    ArtifactCorrupted,
    AuthenticationRequired,
    IntegrityError,
    InvalidInput,
    LoopmlError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    StoreUnavailable,
)
from loopml.server.responses import OrjsonResponse

__all__ = [
    "ERROR_RESPONSES",
    "ErrorBody",
    "ForeignErrors",
    "declared_error",
    "document_errors",
    "error_response",
    "install_error_handlers",
    "status_for",
]

logger = logging.getLogger("loopml.server")

# Most specific first: the first class an error is an instance of decides its status.
_STATUS: tuple[tuple[type[LoopmlError], int], ...] = (
    (PayloadTooLarge, 413),
    (NotFound, 404),
    (InvalidInput, 400),
    (AlreadyExists, 400),
    (AuthenticationRequired, 401),
    (PermissionDenied, 403),
    (ArtifactCorrupted, 400),
    (IntegrityError, 409),
    (StoreUnavailable, 503),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def status_for(error: LoopmlError) -> int:
    """The HTTP status of a loopml error."""
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return OrjsonResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:] or parts
    return ".".join(parts) or "request"


async def _loopml_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoopmlError)
    status = status_for(exc)
    if status >= 500:
        logger.error("server error %s: %s", exc.code, exc.message, exc_info=exc)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationRequired) else None
    return error_response(status, exc.code, exc.message, headers)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", detail.get("msg", "invalid JSON"))
        return error_response(400, "invalid_json", f"the request body is not valid JSON: {reason}")
    problems = [f"{_loc(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors[:20]]
    more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
    return error_response(400, "invalid_request", "invalid request: " + "; ".join(problems) + more)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error" if status < 500 else "internal_error")
    if status == 404:
        message = "no such API route; see /api/v1/docs for the routes this server serves"
    elif status == 405:
        message = "this route does not accept that HTTP method; see /api/v1/docs"
    elif status == 400 and isinstance(exc.__cause__, RecursionError | UnicodeDecodeError):
        # FastAPI's body parser turns these into a bare 400 "There was an error parsing the body".
        reason = (
            "it is nested too deeply (keep arrays and objects to a few hundred levels)"
            if isinstance(exc.__cause__, RecursionError)
            else f"it is not UTF-8 ({exc.__cause__}); send JSON encoded as UTF-8"
        )
        return error_response(400, "invalid_json", f"the request body is not valid JSON: {reason}")
    else:
        message = str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    return error_response(status, code, message, headers)


async def _unhandled(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "the server failed to handle this request; see its log")


ForeignErrors = tuple[Callable[[str], bool], Callable[[Exception, Request], Response]]
"""Another wire protocol's errors: which paths are its own, and how it answers an error there."""


def install_error_handlers(app: FastAPI, foreign: Sequence[ForeignErrors] = ()) -> None:
    """loopml's error answers; under the paths of a `foreign` protocol (MLflow's), that protocol's. Its own
    routes answer their errors themselves; this covers what no route sees (an unknown path or method)."""

    async def http_error(request: Request, exc: Exception) -> Response:
        for owns, render in foreign:
            if owns(request.url.path):
                return render(exc, request)
        return await _http_error(request, exc)

    app.add_exception_handler(LoopmlError, _loopml_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, _unhandled)


class ErrorDetail(BaseModel):
    code: str
    """Stable, machine-readable: `run_not_found`, `invalid_request`, `payload_too_large`, ..."""
    message: str
    """What went wrong and what to fix, for a person."""


class ErrorBody(BaseModel):
    """The body of every error answer of the API."""

    error: ErrorDetail


def declared_error(description: str) -> dict[str, Any]:
    # JSON whatever the route's own media type (the HTML report, a streamed download): hence no "model" here,
    # which FastAPI would file under the route's media type; `document_errors` adds the schema it refers to.
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: declared_error("Bad request: malformed JSON, a field of the wrong type or shape, an invalid value"),
    401: declared_error("No API token, or an unknown or revoked one"),
    403: declared_error("The token's role or project scope does not allow this"),
    404: declared_error("No such resource (or not visible to this token)"),
    409: declared_error("Conflicts with the stored state"),
    413: declared_error("The request body is over the server's limit for this route"),
    422: declared_error("Not sent by this server: a request that fails validation is answered 400 `invalid_request`"),
}
"""The error answers every authenticated route of the API may give, declared once on its routers."""


def document_errors(app: FastAPI) -> None:
    """Add the error body's schema to the app's OpenAPI document (the schema `ERROR_RESPONSES` refer to)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        if "ErrorBody" not in schemas:
            body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(body.pop("$defs", {}))
            schemas["ErrorBody"] = body
        return document

    app.openapi = openapi  # type: ignore[method-assign]
