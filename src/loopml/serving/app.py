"""The serving ASGI app: native, OIP v2 and MLflow `/invocations` predictions, health, and `/metrics`.

A raw ASGI callable rather than a framework. A request is matched in the routing table
(`loopml.serving.routing`); a prediction then goes through the stages of `loopml.serving.stages` (resolve
route -> decode -> resolve version -> validate -> predict -> encode) on one `Exchange`, and after the answer is
sent the observers (`loopml.serving.observers`: metrics, request log, shadow copies) look at it. Every response
carries `X-Request-Id` (the client's, when it sent a well-formed one) and, once a version is chosen,
`X-Loopml-Model-Version: model/version`. Every client mistake is a 4xx in the protocol's error shape.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from loopml.errors import NotFound
from loopml.serving.exchange import Disconnected, Exchange, HttpError, classify
from loopml.serving.features import FeatureFetcher
from loopml.serving.host import ModelHost
from loopml.serving.invocations import InvocationsProtocol
from loopml.serving.metrics import CONTENT_TYPE_LATEST
from loopml.serving.native import NativeProtocol
from loopml.serving.observers import MetricsObserver, Observer, RequestLogObserver, ShadowObserver
from loopml.serving.oip import PROBABILITIES, OipProtocol, datatype_of
from loopml.serving.protocol import WireProtocol
from loopml.serving.records import RequestLogSink
from loopml.serving.routing import Router, protocol_of
from loopml.serving.stages import (
    REQUEST_ID,
    decode,
    encode,
    fetch_features,
    predict,
    resolve_route,
    resolve_version,
    route_of,
    validate,
    version_of,
)

__all__ = ["ServingApp", "create_serving_app"]

logger = logging.getLogger("loopml.serving")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Params = dict[str, str]

_JSON = b"application/json"
PROTOCOLS: dict[str, WireProtocol] = {
    "native": NativeProtocol(),
    "oip": OipProtocol(),
    "invocations": InvocationsProtocol(),
}


class ServingApp:
    """The ASGI app `create_serving_app` returns; `host`, `metrics` and `observers` are public for tests and
    embedding."""

    def __init__(
        self,
        host: ModelHost,
        *,
        request_log: RequestLogSink | None,
        max_body_bytes: int,
        features: FeatureFetcher | None = None,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
        self.host = host
        self.request_log = request_log
        self.max_body_bytes = max_body_bytes
        self.features = features
        self.metrics = host.metrics
        self.backlog = host.backlog
        self.router = Router()
        self.shadows = ShadowObserver(host, self.metrics, request_log)
        observers: list[Observer] = [MetricsObserver(self.metrics)]
        if request_log is not None:
            observers.append(RequestLogObserver(request_log))
        observers.append(self.shadows)
        self.observers: tuple[Observer, ...] = tuple(observers)
        self._handlers: dict[str, Callable[[Send, Params, str], Awaitable[None]]] = {
            "health": self._health,
            "version": self._version,
            "metrics": self._metrics,
            "healthz": self._healthz,
            "deployments": self._deployments,
            "oip_server": self._oip_server,
            "oip_live": self._oip_live,
            "oip_ready": self._oip_ready,
            "oip_model": self._oip_model,
            "oip_model_ready": self._oip_model_ready,
        }
        self._id_prefix = os.urandom(8).hex()
        self._id_counter = itertools.count()
        from loopml import __version__

        self.version = __version__

    def _request_id(self, headers: dict[bytes, bytes]) -> tuple[str, bool]:
        """The client's X-Request-Id when well-formed, else a new one (and True): 32 hex digits, this app's
        random 64-bit prefix and a counter. Unique like a uuid4 across replicas and workers (each app draws its
        prefix), without a system call for random bytes on every request."""
        value = headers.get(b"x-request-id")
        if value is not None:
            text = value.decode("latin-1")
            if REQUEST_ID.fullmatch(text):
                return text, False
        return f"{self._id_prefix}{next(self._id_counter):016x}", True

    @property
    def pending(self) -> int:
        """Prediction requests accepted and not yet handed to a micro-batcher."""
        return self.backlog.count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # --- routing -------------------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        headers = dict(scope["headers"])
        request_id, generated = self._request_id(headers)
        match = self.router.match(method, path)
        endpoint = match.endpoint
        if endpoint is None:
            if match.status == 405:
                protocol = PROTOCOLS[match.protocol]
                message = f"use {' or '.join(match.allowed)}"
                return await _error(send, protocol, 405, "method_not_allowed", message, request_id)
            message = f"no route {method} {path}"
            return await _error(send, PROTOCOLS[protocol_of(path)], 404, "not_found", message, request_id)
        params = match.params
        version: int | None = None
        if "version" in params:
            text = params["version"]
            if not text.isdigit():
                message = f"version must be a number: {text!r}"
                return await _error(send, PROTOCOLS[endpoint.protocol], 400, "bad_request", message, request_id)
            version = int(text)
        if endpoint.name == "predict":
            exchange = Exchange(
                PROTOCOLS[endpoint.protocol],
                request_id,
                headers,
                params.get("deployment"),
                version,
                generated_id=generated,
                started=time.perf_counter(),
                time_ms=time.time_ns() // 1_000_000,
            )
            return await self._predict(exchange, receive, send)
        return await self._handlers[endpoint.name](send, params, request_id)

    # --- the prediction path -------------------------------------------------------------------------------

    async def _predict(self, exchange: Exchange, receive: Receive, send: Send) -> None:
        """The stages in order, the answer (or the error in the protocol's shape), then the observers."""
        host = self.host
        backlog = self.backlog
        backlog.count += 1
        exchange.in_backlog = True
        gauge = None
        try:
            resolve_route(exchange, host)
            gauge = self.metrics.in_flight_gauge(exchange.deployment)
            gauge.inc()
            await decode(exchange, receive, self.max_body_bytes)
            choice = resolve_version(exchange, host)
            served = choice.served
            host.acquire(served)
            try:
                await fetch_features(exchange, self.features)
                validate(exchange)
                await predict(exchange, backlog, host.executor)
            finally:
                host.release(served)
            body = encode(exchange)
            exchange.status = 200
            await _send(send, 200, body, _JSON, exchange.request_id, choice.header)
        except Disconnected:
            exchange.status = 499
        except Exception as error:  # every error becomes an answer in the protocol's shape
            status, code, message = classify(error)
            if status >= 500 and code not in ("deployment_unavailable", "unavailable"):  # those: logged at load
                logger.error("prediction request %s failed", exchange.request_id, exc_info=error)
            exchange.status, exchange.code = status, code
            label = exchange.choice.header if exchange.choice is not None else None
            await _error(send, exchange.protocol, status, code, message, exchange.request_id, label)
        finally:
            if exchange.in_backlog:
                backlog.count -= 1
                exchange.in_backlog = False
            if gauge is not None:
                gauge.dec()
            exchange.elapsed = time.perf_counter() - exchange.started
        for observer in self.observers:
            try:
                observer.observe(exchange)
            except Exception:
                logger.exception("an observer failed on request %s", exchange.request_id)

    # --- the other endpoints -------------------------------------------------------------------------------

    async def _health(self, send: Send, _params: Params, rid: str) -> None:
        await _send(send, 200 if self.host.ready else 503, b"\n", _JSON, rid)

    async def _version(self, send: Send, _params: Params, rid: str) -> None:
        await _send(send, 200, self.version.encode(), b"text/plain; charset=utf-8", rid)

    async def _metrics(self, send: Send, _params: Params, rid: str) -> None:
        await _send(send, 200, self.metrics.exposition(), CONTENT_TYPE_LATEST.encode(), rid)

    async def _healthz(self, send: Send, _params: Params, rid: str) -> None:
        body = {
            "status": "ok" if self.host.ready else "loading",
            "deployments": self._describe(),
            "load_errors": self.host.load_errors,
        }
        await _send(send, 200, orjson.dumps(body), _JSON, rid)

    async def _deployments(self, send: Send, _params: Params, rid: str) -> None:
        await _send(send, 200, orjson.dumps({"deployments": self._describe()}), _JSON, rid)

    async def _oip_server(self, send: Send, _params: Params, rid: str) -> None:
        body = {"name": "loopml", "version": self.version, "extensions": []}
        await _send(send, 200, orjson.dumps(body), _JSON, rid)

    async def _oip_live(self, send: Send, _params: Params, rid: str) -> None:
        await _send(send, 200, b'{"live":true}', _JSON, rid)

    async def _oip_ready(self, send: Send, _params: Params, rid: str) -> None:
        ready = self.host.ready
        await _send(send, 200 if ready else 503, orjson.dumps({"ready": ready}), _JSON, rid)

    async def _oip_model_ready(self, send: Send, params: Params, rid: str) -> None:
        name = params["deployment"]
        try:
            version_of(route_of(self.host, name), _version_param(params))
        except (NotFound, HttpError) as error:
            await _oip_refusal(send, error, rid)
            return
        await _send(send, 200, orjson.dumps({"name": name, "ready": True}), _JSON, rid)

    async def _oip_model(self, send: Send, params: Params, rid: str) -> None:
        name = params["deployment"]
        try:
            route = route_of(self.host, name)
            choice = version_of(route, _version_param(params))
        except (NotFound, HttpError) as error:
            await _oip_refusal(send, error, rid)
            return
        model = choice.served.model
        signature = model.converter.signature
        outputs = signature.outputs
        body: dict[str, Any] = {
            "name": name,
            "versions": [str(c.version.version) for c in route.by_version.values()],
            "platform": f"loopml-{model.flavor}",
            "inputs": [{"name": c.name, "datatype": datatype_of(c.dtype), "shape": [-1]} for c in signature.inputs],
            "outputs": [
                {
                    "name": "predict",
                    "datatype": datatype_of(outputs.dtype) if outputs else "FP64",
                    "shape": list(outputs.shape) if outputs else [-1],
                }
            ],
        }
        if model.classes is not None:  # a classifier: its probabilities can be asked for by name
            body["outputs"].append(
                {
                    "name": PROBABILITIES,
                    "datatype": "FP64",
                    "shape": [-1, len(model.classes)],
                    "parameters": {"classes": model.classes},
                }
            )
        await _send(send, 200, orjson.dumps(body), _JSON, rid, choice.header)

    def _describe(self) -> dict[str, Any]:
        return {
            name: {
                "revision": route.spec.revision,
                "strategy": route.spec.strategy,
                "sticky_key": route.spec.sticky_key,
                "versions": [
                    {
                        "model": c.version.model,
                        "version": c.version.version,
                        "weight": c.version.weight,
                        "role": c.version.role,
                        "flavor": c.served.model.flavor,
                    }
                    for c in route.by_version.values()
                ],
            }
            for name, route in self.host.routes.items()
        }

    # --- lifespan ------------------------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.host.start()
                except Exception as error:
                    logger.exception("cannot load the deployments")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shadows.drain()
                await self.host.stop()
                if self.features is not None:
                    self.features.close()
                if self.request_log is not None:
                    # here, not only at interpreter exit: uvicorn ends a SIGTERM'd process by re-raising the
                    # signal, and a process killed by a signal runs no exit handlers
                    try:
                        await asyncio.to_thread(self.request_log.close)
                    except Exception:
                        logger.exception("the request log could not be closed; what it held is left to recovery")
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_serving_app(
    host: ModelHost,
    *,
    request_log: RequestLogSink | None = None,
    max_body_bytes: int = 1_048_576,
    features: FeatureFetcher | None = None,
) -> ServingApp:
    """The serving ASGI app for `host`; its lifespan loads the deployments (`await host.start()`) and stops them.

    Without a lifespan (httpx's `ASGITransport`), call `await host.start()` before the first request. The host
    brings its own collaborators (batching, metrics, backlog: see `ModelHost`); the app adds the routing
    table, the stages and the observers.
    """
    return ServingApp(host, request_log=request_log, max_body_bytes=max_body_bytes, features=features)


# --- helpers ----------------------------------------------------------------------------------------------------


def _version_param(params: Params) -> int | None:
    text = params.get("version")
    return None if text is None else int(text)  # the router's caller checked it is digits


async def _oip_refusal(send: Send, error: NotFound | HttpError, rid: str) -> None:
    status, code, message = classify(error)
    await _error(send, PROTOCOLS["oip"], status, code, message, rid)


async def _error(
    send: Send,
    protocol: WireProtocol,
    status: int,
    code: str,
    message: str,
    request_id: str,
    version_label: bytes | None = None,
) -> None:
    await _send(send, status, protocol.error(code, message), _JSON, request_id, version_label)


async def _send(
    send: Send, status: int, body: bytes, content_type: bytes, request_id: str, version_label: bytes | None = None
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    if version_label is not None:
        headers.append((b"x-loopml-model-version", version_label))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
