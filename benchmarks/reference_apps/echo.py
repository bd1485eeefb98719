"""The echo reference app: the HTTP + JSON ceiling of Python serving on uvicorn/uvloop/httptools.

It reads the body, parses it as JSON (orjson, as loopml does), and answers a constant prediction in loopml's
native answer shape. No model, no validation, no bookkeeping: whatever a Python serving app does beyond this
is its own cost.

    uvicorn --loop uvloop --http httptools benchmarks.reference_apps.echo:app
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_ANSWER = orjson.dumps({"id": "echo", "deployment": "bike", "model": "bike", "version": 1, "predictions": [53.65]})
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_ANSWER)).encode())]


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] != "/health":
        orjson.loads(body)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _ANSWER})
