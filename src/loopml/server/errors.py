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
    RemoteError, other LoopmlError   500
    request validation (pydantic)    400   invalid_request, naming each field (loc: msg)
    malformed JSON                   400   invalid_json
    unknown route / method           404 / 405 (not_found / method_not_allowed)
    any other exception              500   internal_error, generic message, logged with its traceback

A deterministic client mistake is never a 5xx.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
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
)
from loopml.server.responses import OrjsonResponse

__all__ = ["error_response", "install_error_handlers", "status_for"]

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
    else:
        message = str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    return error_response(status, code, message, headers)


async def _unhandled(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "the server failed to handle this request; see its log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LoopmlError, _loopml_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
