"""The bare reference app: the predictor loopml serves with, called once per request, and nothing else.

The model package named by `BARE_MODEL_DIR` is loaded with loopml's own serving loader
(`loopml.serving.predictors.load_serving_model`) and warmed up as a replica warms it up
(`LoadedModel.warm_up`): the same predict path a replica uses. Each request's
JSON body (`{"records": [{...}]}`) is parsed, its values put in a matrix in signature order and predicted on
the event loop thread: no validation, micro-batching, request log or metrics.

    BARE_MODEL_DIR=... uvicorn --loop uvloop --http httptools benchmarks.reference_apps.bare:app
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from loopml.serving.predictors import load_serving_model
from loopml.serving.specs import ServingVersion

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_MODEL = load_serving_model(ServingVersion("bike", 1, Path(os.environ["BARE_MODEL_DIR"])))
_MODEL.loaded.warm_up()  # as a replica does when it loads a version: the same predict path as loopml's
_NAMES = _MODEL.converter.names
_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] == "/health":
        answer = b"{}"
    else:
        records = orjson.loads(body)["records"]
        matrix = np.array([[row[name] for name in _NAMES] for row in records], dtype=np.float64)
        answer = orjson.dumps({"predictions": _MODEL.predict(matrix).tolist()})
    headers = [*_HEADERS, (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})
