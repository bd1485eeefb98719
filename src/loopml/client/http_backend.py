"""The HTTP backend: the same operations against a loopml server (`LOOPML_TRACKING_URI`, `LOOPML_TOKEN`)."""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import orjson

from loopml.api import OPERATIONS, Operation, tracking
from loopml.client.downloads import write_verified
from loopml.domain import ArtifactRecord, MetricColumns, wire
from loopml.errors import (
    AuthenticationRequired,
    IntegrityError,
    InvalidInput,
    LoopmlError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RemoteError,
    error_for_code,
)

R = TypeVar("R")
_TEMPLATE = re.compile(r"{(\w+)(:path)?}")

API = "/api/v1"
CONNECT_RETRIES = 3
"""Attempts when the server cannot be reached at all (the request was not sent, so a retry is safe)."""


_BY_STATUS: dict[int, type[LoopmlError]] = {
    400: InvalidInput,
    401: AuthenticationRequired,
    403: PermissionDenied,
    404: NotFound,
    405: InvalidInput,
    409: IntegrityError,
    413: PayloadTooLarge,
    415: InvalidInput,
    422: InvalidInput,
}
"""For error codes this client does not know (request validation, unknown routes, newer servers)."""


class HttpBackend:
    def __init__(
        self,
        uri: str,
        token: str | None = None,
        client: httpx.Client | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.uri = uri.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if client is None:
            client = httpx.Client(base_url=self.uri, timeout=timeout)
        client.headers.update(headers)
        self._http = client

    # -- transport ---------------------------------------------------------------------------------

    def _request(self, method: str, url: str, *, json: Any = None, **kwargs: Any) -> httpx.Response:
        if json is not None:
            kwargs["content"] = orjson.dumps(json, default=_jsonable)
            kwargs.setdefault("headers", {})["Content-Type"] = "application/json"
        for attempt in range(CONNECT_RETRIES):
            try:
                response = self._http.request(method, API + url, **kwargs)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == CONNECT_RETRIES - 1:
                    raise RemoteError(f"cannot reach the loopml server at {self.uri}: {exc}") from exc
                time.sleep(0.2 * 2**attempt)
            except httpx.TransportError as exc:
                # Sent, but the answer was lost (reset, timeout, cut off): the server may have applied it.
                raise RemoteError(
                    f"{method} {url} to the loopml server at {self.uri} got no complete answer "
                    f"({type(exc).__name__}: {exc or 'no detail'})"
                ) from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _json(self, method: str, url: str, *, json: Any = None, **kwargs: Any) -> Any:
        return orjson.loads(self._request(method, url, json=json, **kwargs).content)

    def _error(self, response: httpx.Response) -> Exception:
        """The loopml error a failed response stands for: by its stable code, else by its HTTP status."""
        try:
            body = orjson.loads(response.read())
            code, message = str(body["error"]["code"]), str(body["error"]["message"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            code = ""
            message = f"{response.request.method} {response.request.url.path} answered {response.status_code}"
            if response.status_code == 401:
                message = f"the server at {self.uri} asks for a token (set LOOPML_TOKEN)"
        cls = error_for_code(code)
        if cls is RemoteError:
            cls = _BY_STATUS.get(response.status_code, RemoteError)
        return cls(message)

    # -- the operations of the table ---------------------------------------------------------------

    def call(self, op: Operation[R], /, **arguments: Any) -> R:
        """One request built from the table: the path from the path fields, the other fields as the JSON body
        (POST, PUT, PATCH) or the query string (GET, DELETE); the answer decoded by the operation's codec."""
        if op.backend_method is not None:
            raise TypeError(f"{op.name} is sent with HttpBackend.{op.backend_method}, not call")
        fields = op.request.to_wire(arguments)
        url = _url(op, fields)
        if op.has_body:
            response = self._request(op.http, url, json=fields)
        else:
            response = self._request(op.http, url, params=fields)
        if op.response.media_type == "application/json":
            return op.response.decode(orjson.loads(response.content))
        if op.response.media_type.startswith("text/"):
            return op.response.decode(response.text)
        return op.response.decode(response.content)

    def log_metrics(self, run_id: str, batch: MetricColumns, batch_key: str | None = None) -> int:
        values: Sequence[float | str] = batch.values
        # A float sum is finite only if every value is (a NaN or an infinity makes it NaN or infinite); it
        # runs at C speed, so the per-value check runs only for a batch that has a non-finite value or whose
        # finite values overflow the sum.
        if not math.isfinite(sum(batch.values)) and not all(math.isfinite(v) for v in batch.values):
            values = [wire.encode_float(v) for v in batch.values]
        body = {"keys": batch.keys, "values": values, "steps": batch.steps, "timestamps": batch.timestamps}
        headers = {} if batch_key is None else {"Idempotency-Key": batch_key}
        url = _url(tracking.LOG_METRICS, {"run_id": run_id})
        return tracking.LOG_METRICS.response.decode(self._json("POST", url, json=body, headers=headers))

    def log_artifact(self, run_id: str, path: str, local_file: Path) -> ArtifactRecord:
        digest = _file_sha256(local_file)
        with open(local_file, "rb") as stream:
            body = self._json(
                tracking.LOG_ARTIFACT.http,
                _url(tracking.LOG_ARTIFACT, {"run_id": run_id, "path": path}),
                content=iter(lambda: stream.read(1 << 20), b""),
                headers={"X-Content-SHA256": digest, "Content-Type": "application/octet-stream"},
            )
        return tracking.LOG_ARTIFACT.response.decode(body)

    def download_artifact(self, run_id: str, path: str, dest: Path) -> Path:
        url = API + _url(tracking.DOWNLOAD_ARTIFACT, {"run_id": run_id, "path": path})
        with self._http.stream(tracking.DOWNLOAD_ARTIFACT.http, url) as response:
            if response.status_code >= 400:
                raise self._error(response)
            digest = response.headers.get("X-Content-SHA256", "")
            return write_verified(response.iter_bytes(1 << 20), digest, dest)

    def close(self) -> None:
        self._http.close()


def _url(op: Operation[Any], fields: dict[str, Any]) -> str:
    """The operation's path with its path fields filled in (and taken out of `fields`)."""
    url = op.path
    for name, as_path in _TEMPLATE.findall(op.path):
        value = fields.pop(name, None)
        url = url.replace(f"{{{name}{as_path}}}", _path_segment(op, name, value, slash=bool(as_path)))
    return url


def _path_segment(op: Operation[Any], name: str, value: Any, *, slash: bool) -> str:
    """A path parameter, percent-encoded (`{x:path}` keeps its slashes); an integer field takes integers only,
    as the service would refuse anything else."""
    if value is None:
        raise InvalidInput(f"{op.name} needs {name}")
    if _INTEGER_PATHS.get((op.name, name), False) and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInput(f"{name} must be an integer, got {value!r}")
    return quote(str(value), safe="/" if slash else "")


_INTEGER_PATHS = {
    (op.name, info.alias or field): info.annotation is int
    for op in OPERATIONS.values()
    for field, info in op.request.model_fields.items()
}


def _jsonable(value: object) -> object:
    """Mappings and sequences orjson does not know (a `MappingProxyType`, a `range`) as JSON objects and arrays."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence | set | frozenset) and not isinstance(value, str | bytes):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()
