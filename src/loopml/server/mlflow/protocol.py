"""MLflow's wire protocol: proto3-JSON requests in, `{"error_code", "message"}` errors out.

- A request message is a JSON object in the body (POST, PATCH, DELETE) or the query string (GET: one
  parameter per field, a repeated field repeated). `Message` reads its fields the way a proto3-JSON parser
  does: an int64 may arrive as a number or a decimal string, a double as a number or "NaN"/"Infinity",
  unknown fields are ignored (newer clients send fields older servers do not know).
- Errors: a loopml error becomes MLflow's code and status (`status_and_code`). The MLflow client retries
  408, 429 and every 5xx for minutes, so a deterministic mistake must be a 4xx here; only a store outage is
  a 503 and only a bug a 500.
- `MlflowRoute` is the route class of every MLflow router: whatever a handler or a dependency raises is
  answered in MLflow's shape, not loopml's `{"error": {...}}`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, NoReturn

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from loopml.errors import (
    AlreadyExists,
    AuthenticationRequired,
    IntegrityError,
    InvalidInput,
    InvalidJson,
    InvalidRequest,
    LoopmlError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    StoreUnavailable,
)

__all__ = [
    "INT64",
    "Message",
    "MlflowResponse",
    "MlflowRoute",
    "admission_error",
    "error_body",
    "mlflow_error_response",
    "read_message",
    "render_exception",
    "status_and_code",
]

logger = logging.getLogger("loopml.server.mlflow")

INT64 = 2**63 - 1
_DECIMAL = re.compile(r"[+-]?[0-9]{1,20}")
MAX_BODY_NESTING = 64

# Most specific first, as in `loopml.server.errors`.
_CODES: tuple[tuple[type[LoopmlError], int, str], ...] = (
    (PayloadTooLarge, 413, "INVALID_PARAMETER_VALUE"),
    (NotFound, 404, "RESOURCE_DOES_NOT_EXIST"),
    (InvalidInput, 400, "INVALID_PARAMETER_VALUE"),
    (AlreadyExists, 400, "RESOURCE_ALREADY_EXISTS"),
    (AuthenticationRequired, 401, "UNAUTHENTICATED"),
    (PermissionDenied, 403, "PERMISSION_DENIED"),
    (IntegrityError, 409, "RESOURCE_CONFLICT"),
    (StoreUnavailable, 503, "TEMPORARILY_UNAVAILABLE"),
)


def status_and_code(error: LoopmlError) -> tuple[int, str]:
    """The HTTP status and MLflow error code of a loopml error."""
    for cls, status, code in _CODES:
        if isinstance(error, cls):
            return status, code
    return 500, "INTERNAL_ERROR"


class MlflowResponse(Response):
    """JSON rendered with orjson; MLflow's JSON has no NaN literal, so callers encode floats first."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(code: str, message: str) -> dict[str, str]:
    return {"error_code": code, "message": message}


def mlflow_error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> MlflowResponse:
    return MlflowResponse(error_body(code, message), status_code=status, headers=dict(headers or {}))


_CHALLENGE = {"WWW-Authenticate": 'Bearer, Basic realm="loopml"'}


def _for_loopml_error(error: LoopmlError) -> Response:
    status, code = status_and_code(error)
    if status >= 500:
        logger.error("server error %s: %s", code, error.message, exc_info=error)
    headers = _CHALLENGE if isinstance(error, AuthenticationRequired) else None
    return mlflow_error_response(status, code, error.message, headers)


def render_exception(exc: Exception, request: Request | None = None) -> Response:
    """The MLflow error answer for anything a route raised."""
    if isinstance(exc, LoopmlError):
        return _for_loopml_error(exc)
    if isinstance(exc, ClientDisconnect):
        return mlflow_error_response(400, "INVALID_PARAMETER_VALUE", "the client disconnected before the body ended")
    if isinstance(exc, RequestValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()[:20])
        return mlflow_error_response(400, "INVALID_PARAMETER_VALUE", f"invalid request: {problems}")
    if isinstance(exc, StarletteHTTPException):
        code = "ENDPOINT_NOT_FOUND" if exc.status_code in (404, 405) else "BAD_REQUEST"
        message = str(exc.detail)
        if exc.status_code in (404, 405):
            where = f" ({request.method} {request.url.path})" if request is not None else ""
            message = f"this server does not serve that MLflow endpoint{where}; see docs/mlflow.md for what it serves"
        if exc.status_code >= 500:  # pragma: no cover - routes raise no server HTTPException
            code = "INTERNAL_ERROR"
        return mlflow_error_response(exc.status_code, code, message)
    where = f" on {request.method} {request.url.path}" if request is not None else ""
    logger.error("unhandled error%s", where, exc_info=exc)
    return mlflow_error_response(500, "INTERNAL_ERROR", "the server failed to handle this request; see its log")


class MlflowRoute(APIRoute):
    """An APIRoute whose errors, from the handler or its dependencies, are MLflow error bodies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every error of this route is answered in MLflow's shape
                return render_exception(exc, request)

        return answer


# -- reading a request message ------------------------------------------------------------------------


def _invalid(message: str) -> NoReturn:
    raise InvalidRequest(message)


def _depth(value: Any, limit: int) -> None:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise InvalidJson(f"the request body is nested more than {limit} levels deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _reject_constant(name: str) -> NoReturn:
    raise InvalidJson(f"the request body is not valid JSON: {name} is not a JSON value")


def parse_json(body: bytes) -> dict[str, Any]:
    """A JSON object; NaN and Infinity literals are taken as numbers (Python's json.dumps writes them)."""
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJson(f"the request body is not UTF-8 ({exc}); send JSON encoded as UTF-8") from None
    try:
        parsed = json.loads(text, parse_constant=lambda c: float(c))
    except RecursionError:
        raise InvalidJson("the request body is nested too deeply") from None
    except ValueError as exc:
        raise InvalidJson(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidJson(f"the request body must be a JSON object, got {type(parsed).__name__}")
    _depth(parsed, MAX_BODY_NESTING)
    return parsed


def _integer(value: object) -> int | None:
    """An integer from proto3-JSON: a JSON integer, an integral number, or a decimal string (int64's form)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return int(value)
    return None


class Message:
    """The fields of one request message, read with proto3-JSON's leniencies and MLflow's error wording."""

    def __init__(self, fields: Mapping[str, Any], repeated_query: Mapping[str, list[str]] | None = None) -> None:
        self._fields = fields
        self._query = repeated_query

    def _raw(self, name: str) -> Any:
        return self._fields.get(name)

    def has(self, name: str) -> bool:
        return self._raw(name) is not None

    def string(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = self._raw(name)
        if value is None:
            if required:
                _invalid(f"Missing value for required parameter '{name}'.")
            return default
        if not isinstance(value, str):
            _invalid(f"Invalid value {value!r} for parameter '{name}' supplied: expected a string")
        if "\x00" in value:
            _invalid(f"Invalid value for parameter '{name}' supplied: it contains a NUL character")
        return value

    def required_string(self, name: str) -> str:
        value = self.string(name, required=True)
        assert value is not None
        return value

    def int64(self, name: str, *, required: bool = False, default: int | None = None) -> int | None:
        value = self._raw(name)
        if value is None:
            if required:
                _invalid(f"Missing value for required parameter '{name}'.")
            return default
        number = _integer(value)
        if number is None or not -INT64 - 1 <= number <= INT64:
            _invalid(f"Invalid value {value!r} for parameter '{name}' supplied: expected a 64-bit integer")
        return number

    def double(self, name: str, *, required: bool = False) -> float | None:
        value = self._raw(name)
        if value is None:
            if required:
                _invalid(f"Missing value for required parameter '{name}'.")
            return None
        if isinstance(value, bool):
            _invalid(f"Invalid value {value!r} for parameter '{name}' supplied: expected a number")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if math.isfinite(number) or value.strip().lower().lstrip("+-") in ("nan", "infinity", "inf"):
                    return number
        _invalid(f"Invalid value {value!r} for parameter '{name}' supplied: expected a number")

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        _invalid(f"Invalid value {value!r} for parameter '{name}' supplied: expected true or false")

    def repeated(self, name: str) -> list[Any]:
        if self._query is not None:
            return list(self._query.get(name, []))
        value = self._raw(name)
        if value is None:
            return []
        if not isinstance(value, list):
            _invalid(f"Invalid value {value!r} for parameter '{name}' supplied: expected a list")
        return value

    def strings(self, name: str) -> list[str]:
        items = self.repeated(name)
        for item in items:
            if not isinstance(item, str) or "\x00" in item:
                _invalid(f"Invalid value {item!r} in parameter '{name}': expected a list of strings")
        return items

    def messages(self, name: str) -> list[Message]:
        items = self.repeated(name)
        for item in items:
            if not isinstance(item, dict):
                _invalid(f"Invalid value {item!r} in parameter '{name}': expected a list of objects")
        return [Message(item) for item in items]

    def message(self, name: str) -> Message | None:
        value = self._raw(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            _invalid(f"Invalid value {value!r} for parameter '{name}' supplied: expected an object")
        return Message(value)


async def read_message(request: Request) -> Message:
    """The request message: the query string for GET, else the JSON body (already bounded by admission)."""
    if request.method == "GET":
        query = request.query_params
        fields = {key: query.get(key) for key in query}
        repeated = {key: query.getlist(key) for key in query}
        return Message(fields, repeated)
    return Message(parse_json(await request.body()))


def admission_error(error: LoopmlError, headers: dict[str, str]) -> Response:
    """The admission middleware's refusals (401 before the body is read, 413) in MLflow's shape."""
    status, code = status_and_code(error)
    if isinstance(error, AuthenticationRequired):
        headers = {**headers, **_CHALLENGE}
    return mlflow_error_response(status, code, error.message, headers)
