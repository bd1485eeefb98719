"""Artifacts of a run: streamed upload (PUT), listing, streamed download.

An upload is never buffered whole: the worker thread that writes the artifact store pulls the request
body chunk by chunk from the event loop. If the client disconnects midway, the pull raises, the artifact
store discards its temporary key, and nothing is published or recorded. Uploads are bound by
`max_artifact_bytes` instead of `max_request_bytes` (`loopml.server.admission`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio.from_thread
from fastapi import Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from loopml.api.tracking import LOG_ARTIFACT
from loopml.errors import InvalidPath
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import Tracking
from loopml.server.errors import error_response
from loopml.server.routes import Custom

_SHA256 = r"^[0-9a-fA-F]{64}$"
_RAW_NAME = re.compile(rb"/runs/[^/]+/artifacts/(.+)$")


def _artifact_name(request: Request, decoded: str) -> str:
    """The artifact name as the client sent it, still percent-encoded, for the sanitizer to decode once.

    The ASGI server has already decoded `path`, leniently: `%ff` arrives as U+FFFD, so two different
    names could become one, and `%2520` would be decoded a second time by the sanitizer. The raw path
    keeps the client's bytes.
    """
    raw = request.scope.get("raw_path")
    found = _RAW_NAME.search(raw) if isinstance(raw, bytes) else None
    if found is None:  # an ASGI server that does not pass raw_path (it is optional)
        return decoded
    try:
        return found.group(1).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPath(
            f"invalid artifact path {found.group(1)!r}: it is not valid UTF-8; "
            "percent-encode the UTF-8 bytes of the name"
        ) from None


def _pull(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    """A sync iterator over an async byte stream; call it from a worker thread of the event loop."""

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    while (chunk := anyio.from_thread.run(next_chunk)) is not None:
        if chunk:
            yield chunk


async def upload_artifact(
    run_id: str,
    path: str,
    request: Request,
    principal: CurrentPrincipal,
    tracking: Tracking,
    x_content_sha256: Annotated[str | None, Header(pattern=_SHA256)] = None,
) -> Any:
    try:
        record = await run_in_threadpool(
            tracking.log_artifact,
            principal,
            run_id,
            _artifact_name(request, path),
            _pull(request.stream()),
            x_content_sha256.lower() if x_content_sha256 else None,
        )
    except ClientDisconnect:
        return error_response(400, "client_disconnected", "the client disconnected before the upload ended")
    return LOG_ARTIFACT.response.encode(record, {})


def download_artifact(
    run_id: str, path: str, request: Request, principal: CurrentPrincipal, tracking: Tracking
) -> Response:
    record, chunks = tracking.open_artifact(principal, run_id, _artifact_name(request, path))
    first = next(chunks, b"")  # open the blob now, so a missing one is an error status, not a cut stream
    headers = {"X-Content-SHA256": record.digest, "Content-Length": str(record.size)}
    return StreamingResponse(itertools.chain([first], chunks), media_type="application/octet-stream", headers=headers)


_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}

ENDPOINTS = {
    "log_artifact": Custom(upload_artifact, {"openapi_extra": {"requestBody": {"required": True, "content": _BINARY}}}),
    "download_artifact": Custom(
        download_artifact, {"response_class": StreamingResponse, "responses": {200: {"content": _BINARY}}}
    ),
}
"""The streamed operations of the table: the body is never buffered whole, either way."""
