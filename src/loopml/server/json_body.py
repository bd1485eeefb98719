"""Reading a JSON body by hand, bounded by `max_request_bytes` (for routes that skip pydantic)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from loopml.errors import InvalidJson, PayloadTooLarge

__all__ = ["read_json"]


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than {limit} bytes (max_request_bytes); send smaller batches")


async def read_json(request: Request, limit: int) -> Any:
    """The parsed JSON body; 413 past `limit` bytes (refused early from Content-Length), 400 if not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJson(f"the request body is not valid JSON: {exc}") from None
