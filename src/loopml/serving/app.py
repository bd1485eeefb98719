"""The serving ASGI app: native, OIP v2 and MLflow `/invocations` predictions, health, and `/metrics`.

A raw ASGI callable rather than a framework: the hot path is read body -> parse -> route -> check -> predict
(micro-batched) -> respond, with no per-request objects beyond the protocol's own. Every response carries
`X-Request-Id` (the client's, when it sent a well-formed one) and, once a version is chosen,
`X-Loopml-Model-Version: model/version`. Every client mistake is a 4xx in the protocol's error shape; the
request log and shadow copies run after the answer is sent and can neither delay nor fail it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from loopml.errors import InvalidInput, NotFound, PayloadTooLarge
from loopml.serving.batching import BatchingConfig
from loopml.serving.host import Choice, ModelHost, Route
from loopml.serving.inputs import ModelInput
from loopml.serving.invocations import InvocationsProtocol
from loopml.serving.metrics import CONTENT_TYPE_LATEST, ServingMetrics
from loopml.serving.native import NativeProtocol
from loopml.serving.oip import PROBABILITIES, OipProtocol, datatype_of
from loopml.serving.predictors import ServingModel
from loopml.serving.protocol import Answer, WireProtocol
from loopml.serving.records import RequestLogSink, RequestRecord

__all__ = ["ServingApp", "create_serving_app"]

logger = logging.getLogger("loopml.serving")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_JSON = b"application/json"
_NATIVE, _OIP, _INVOCATIONS = NativeProtocol(), OipProtocol(), InvocationsProtocol()
MAX_SHADOW_IN_FLIGHT = 64


class _HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _Disconnected(Exception):
    """The client went away before the answer was sent (logged as 499, as nginx does)."""


@dataclass
class _Outcome:
    """What one prediction request became: for the metrics, the request log and the shadow copy."""

    deployment: str = ""
    choice: Choice | None = None
    status: int = 500
    data: ModelInput | None = None
    outputs: list[Any] | None = None
    sticky_key: str | None = None
    refused_by_contract: bool = False
    probabilities: list[list[float]] | None = None


class ServingApp:
    """The ASGI app `create_serving_app` returns; `metrics` and `host` are public for tests and embedding."""

    def __init__(
        self, host: ModelHost, *, request_log: RequestLogSink | None, max_body_bytes: int, batching: BatchingConfig
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
        self.host = host
        self.request_log = request_log
        self.max_body_bytes = max_body_bytes
        self.metrics = ServingMetrics()
        self.pending = 0  # accepted prediction requests not yet handed to a micro-batcher
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        host.batching = batching
        host.pending = lambda: self.pending
        host.observe_batch = self.metrics.batch_observer
        host.on_change = self._on_change
        from loopml import __version__

        self.version = __version__

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
        request_id, generated = _request_id(scope)
        scope["loopml.generated_id"] = generated
        parts = path.strip("/").split("/")
        head = parts[0]
        if head == "v1" and len(parts) == 4 and parts[1] == "deployments" and parts[3] == "predict":
            if method != "POST":
                return await self._error(send, _NATIVE, 405, "method_not_allowed", "use POST", request_id)
            return await self._predict(scope, receive, send, _NATIVE, parts[2], None, request_id)
        if head == "v2":
            return await self._oip(scope, receive, send, parts, method, request_id)
        if path == "/invocations":
            if method != "POST":
                return await self._error(send, _INVOCATIONS, 405, "method_not_allowed", "use POST", request_id)
            return await self._predict(scope, receive, send, _INVOCATIONS, None, None, request_id)
        if method not in ("GET", "HEAD"):
            return await self._error(
                send, _NATIVE, 405 if path in _GET_ROUTES else 404, "not_found", f"no route {method} {path}", request_id
            )
        if path in ("/ping", "/health"):
            status = 200 if self.host.ready else 503
            return await _send(send, status, b"\n", _JSON, request_id)
        if path == "/version":
            return await _send(send, 200, self.version.encode(), b"text/plain; charset=utf-8", request_id)
        if path == "/metrics":
            return await _send(send, 200, self.metrics.exposition(), CONTENT_TYPE_LATEST.encode(), request_id)
        if path == "/healthz":
            body = {
                "status": "ok" if self.host.ready else "loading",
                "deployments": self._describe(),
                "load_errors": self.host.load_errors,
            }
            return await _send(send, 200, orjson.dumps(body), _JSON, request_id)
        if path == "/v1/deployments":
            return await _send(send, 200, orjson.dumps({"deployments": self._describe()}), _JSON, request_id)
        return await self._error(send, _NATIVE, 404, "not_found", f"no route GET {path}", request_id)

    async def _oip(self, scope: Scope, receive: Receive, send: Send, parts: list[str], method: str, rid: str) -> None:
        # /v2, /v2/health/{live,ready}, /v2/models/{name}[/versions/{v}][/ready|/infer]
        if len(parts) >= 3 and parts[1] == "models":
            name, rest = parts[2], parts[3:]
            version: int | None = None
            if len(rest) >= 2 and rest[0] == "versions":
                if not rest[1].isdigit():
                    return await self._error(
                        send, _OIP, 400, "bad_request", f"version must be a number: {rest[1]!r}", rid
                    )
                version, rest = int(rest[1]), rest[2:]
            if rest == ["infer"]:
                if method != "POST":
                    return await self._error(send, _OIP, 405, "method_not_allowed", "use POST", rid)
                return await self._predict(scope, receive, send, _OIP, name, version, rid)
            if method not in ("GET", "HEAD"):
                return await self._error(send, _OIP, 405, "method_not_allowed", "use GET", rid)
            if rest == []:
                return await self._oip_metadata(send, name, version, rid)
            if rest == ["ready"]:
                try:
                    self._version_choice(self._route(name), version)
                except NotFound as error:
                    return await self._error(send, _OIP, 404, "not_found", error.message, rid)
                except _HttpError as error:
                    return await self._error(send, _OIP, error.status, error.code, error.message, rid)
                return await _send(send, 200, orjson.dumps({"name": name, "ready": True}), _JSON, rid)
        elif method in ("GET", "HEAD"):
            if parts == ["v2"]:
                body = {"name": "loopml", "version": self.version, "extensions": []}
                return await _send(send, 200, orjson.dumps(body), _JSON, rid)
            if parts == ["v2", "health", "live"]:
                return await _send(send, 200, b'{"live":true}', _JSON, rid)
            if parts == ["v2", "health", "ready"]:
                ready = self.host.ready
                return await _send(send, 200 if ready else 503, orjson.dumps({"ready": ready}), _JSON, rid)
        return await self._error(send, _OIP, 404, "not_found", f"no route {method} /{'/'.join(parts)}", rid)

    async def _oip_metadata(self, send: Send, name: str, version: int | None, rid: str) -> None:
        try:
            route = self._route(name)
            choice = self._version_choice(route, version)
        except NotFound as error:
            return await self._error(send, _OIP, 404, "not_found", error.message, rid)
        except _HttpError as error:
            return await self._error(send, _OIP, error.status, error.code, error.message, rid)
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
        return await _send(send, 200, orjson.dumps(body), _JSON, rid, choice.version.label.encode())

    # --- the prediction path -------------------------------------------------------------------------------

    async def _predict(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        protocol: WireProtocol,
        deployment: str | None,
        version: int | None,
        request_id: str,
    ) -> None:
        started = time.perf_counter()
        time_ms = time.time_ns() // 1_000_000
        outcome = _Outcome(deployment=deployment or "")
        self.pending += 1
        counted = True
        gauge = None
        parsed: Any = None
        try:
            route = self._single_route() if deployment is None else self._route(deployment)
            outcome.deployment = route.spec.name
            gauge = self.metrics.in_flight_gauge(route.spec.name)
            gauge.inc()
            headers = _headers(scope)
            content_type = _content_type(headers)
            if content_type not in protocol.content_types:
                raise _HttpError(415, "unsupported_media_type", _media_message(content_type, protocol))
            if protocol.name == "oip" and b"inference-header-content-length" in headers:
                raise InvalidInput("binary tensor data is not supported; send JSON tensors (binary_data=False)")
            body = await _read_body(receive, headers, self.max_body_bytes)
            parsed = protocol.parse(body, content_type)
            if (
                protocol.name == "oip"
                and scope.get("loopml.generated_id")
                and _REQUEST_ID.fullmatch(parsed.get("id", ""))
            ):
                request_id = parsed["id"]  # no X-Request-Id header: the OIP id names the request in logs
            # the body was read (an await): the table may have been swapped since; route on the current one, and
            # acquire the version before the next await so it cannot be unloaded under this request
            route = self._single_route() if deployment is None else self._route(deployment)
            sticky_field = route.spec.sticky_key
            key = _sticky_key(headers, protocol, parsed, sticky_field)
            outcome.sticky_key = key
            choice = self._version_choice(route, version) if version is not None else route.choose(key)
            outcome.choice = choice
            served = choice.served
            self.host.acquire(served)
            try:
                model = served.model
                wants_probabilities = protocol.method(parsed) == "predict_proba"
                if wants_probabilities:
                    model.check_probabilities()
                data = protocol.to_input(parsed, model.converter.names, sticky_field)
                matrix = model.converter.to_matrix(data)
                if model.contract is not None:
                    self._check_contract(outcome.deployment, model, data)
                outcome.data = data
                self.pending -= 1
                counted = False
                try:
                    outputs = await served.batcher.submit(matrix, data.rows)
                    if wants_probabilities:  # not micro-batched: rarer, and a second call on the same matrix
                        loop = asyncio.get_running_loop()
                        found = await loop.run_in_executor(self.host.executor, model.predict_proba, matrix)
                        outcome.probabilities = found.tolist()
                except (ValueError, TypeError) as error:
                    # the input passed the signature and the model's own checks refused it (say, infinity where
                    # it wants finite numbers): the caller's data, not the server, has to change
                    raise _HttpError(422, "model_refused_input", f"the model refused the input: {error}") from error
            finally:
                self.host.release(served)
            outcome.outputs = outputs
            signature_out = model.converter.signature.outputs
            answer = Answer(
                request_id,
                route.spec.name,
                model.model,
                model.version,
                outputs,
                signature_out.dtype if signature_out else None,
                outcome.probabilities,
                model.classes if outcome.probabilities is not None else None,
            )
            outcome.status = 200
            await _send(send, 200, protocol.answer(parsed, answer), _JSON, request_id, choice.version.label.encode())
        except _Disconnected:
            outcome.status = 499
        except Exception as error:  # every error becomes an answer in the protocol's shape
            status, code, message = _classify(error)
            if status >= 500 and code not in ("deployment_unavailable", "unavailable"):  # those: logged at load
                logger.error("prediction request %s failed", request_id, exc_info=error)
            outcome.status = status
            outcome.refused_by_contract = code == "contract_violation"
            label = outcome.choice.version.label.encode() if outcome.choice is not None else None
            await self._error(send, protocol, status, code, message, request_id, label)
        finally:
            if counted:
                self.pending -= 1
            if gauge is not None:
                gauge.dec()
            chosen = outcome.choice
            elapsed = time.perf_counter() - started
            self.metrics.record(
                outcome.deployment,
                chosen.version.model if chosen else "",
                str(chosen.version.version) if chosen else "",
                protocol.name,
                outcome.status,
                elapsed,
            )
        if outcome.status == 200:
            self._after(outcome, protocol, request_id, time_ms, elapsed, route)
        elif (
            (outcome.status >= 500 or outcome.refused_by_contract)
            and outcome.choice is not None
            and self.request_log is not None
        ):
            # Failures and contract refusals are logged with their status: the canary analysis compares error
            # rates, and monitors alert on the share of requests the contract refused.
            failed = outcome.choice.version
            self._log(
                RequestRecord(
                    request_id=request_id,
                    time_ms=time_ms,
                    deployment=outcome.deployment,
                    model=failed.model,
                    version=failed.version,
                    role=failed.role,
                    inputs=outcome.data.columns if outcome.data is not None else {},
                    outputs=[],
                    latency_ms=elapsed * 1000,
                    status=outcome.status,
                    protocol=protocol.name,
                    sticky_key=outcome.sticky_key,
                )
            )

    def _after(
        self, outcome: _Outcome, protocol: WireProtocol, request_id: str, time_ms: int, elapsed: float, route: Route
    ) -> None:
        """Log the answer and send the shadow copies; runs after the response went out."""
        assert outcome.choice is not None
        assert outcome.data is not None
        assert outcome.outputs is not None
        if self.request_log is not None:
            version = outcome.choice.version
            self._log(
                RequestRecord(
                    request_id=request_id,
                    time_ms=time_ms,
                    deployment=outcome.deployment,
                    model=version.model,
                    version=version.version,
                    role=version.role,
                    inputs=outcome.data.columns,
                    outputs=outcome.outputs,
                    latency_ms=elapsed * 1000,
                    status=200,
                    protocol=protocol.name,
                    sticky_key=outcome.sticky_key,
                    probabilities=outcome.probabilities,
                    classes=outcome.choice.served.model.classes if outcome.probabilities is not None else None,
                )
            )
        for shadow in route.shadows:
            if len(self._shadow_tasks) >= MAX_SHADOW_IN_FLIGHT:
                self.metrics.shadow.labels(
                    outcome.deployment, shadow.version.model, str(shadow.version.version), "dropped"
                ).inc()
                continue
            task = asyncio.get_running_loop().create_task(self._shadow(shadow, outcome, protocol, request_id, time_ms))
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(
        self, shadow: Choice, outcome: _Outcome, protocol: WireProtocol, request_id: str, time_ms: int
    ) -> None:
        assert outcome.data is not None
        version = shadow.version
        served = shadow.served
        started = time.perf_counter()
        self.host.acquire(served)
        try:
            data = outcome.data
            columns = data.columns
            names = served.model.converter.names
            if tuple(columns) != names:
                missing = [n for n in names if n not in columns]
                if missing:
                    raise InvalidInput(f"the shadow version needs field {missing[0]!r}, which the request lacks")
                data = ModelInput({n: columns[n] for n in names}, data.rows)
            outputs = await served.batcher.submit(served.model.converter.to_matrix(data), data.rows)
        except Exception as error:  # a shadow's failure is counted and logged, never raised
            self.metrics.shadow.labels(outcome.deployment, version.model, str(version.version), "failed").inc()
            logger.warning("shadow %s failed on request %s: %s", version.label, request_id, error)
            return
        finally:
            self.host.release(served)
        self.metrics.shadow.labels(outcome.deployment, version.model, str(version.version), "answered").inc()
        if self.request_log is not None:
            self._log(
                RequestRecord(
                    request_id=request_id,
                    time_ms=time_ms,
                    deployment=outcome.deployment,
                    model=version.model,
                    version=version.version,
                    role="shadow",
                    inputs=data.columns,
                    outputs=outputs,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    status=200,
                    protocol=protocol.name,
                    sticky_key=outcome.sticky_key,
                )
            )

    def _check_contract(self, deployment: str, model: ServingModel, data: ModelInput) -> None:
        """Count the contract's violations; raise a 422 naming the first blocking one (the rest are warnings)."""
        found = model.violations(data)
        if not found:
            return
        version = str(model.version)
        blocking = None
        for row, violation in found:
            self.metrics.count_violation(
                deployment, model.model, version, violation.column, violation.check, violation.severity
            )
            if blocking is None and violation.severity == "block":
                blocking = (row, violation)
        if blocking is not None:
            row, violation = blocking
            where = f"row {row}: " if data.rows > 1 else ""
            raise _HttpError(
                422,
                "contract_violation",
                f"{where}column {violation.column!r} fails the contract's {violation.check} check: "
                f"{violation.message} (block)",
            )

    def _log(self, record: RequestRecord) -> None:
        assert self.request_log is not None
        try:
            self.request_log.append(record)
        except Exception:
            logger.exception("the request log refused a record (request %s)", record.request_id)

    def _route(self, deployment: str) -> Route:
        """The deployment's route; a 503 with the reason when its model versions failed to load here."""
        try:
            return self.host.route(deployment)
        except NotFound:
            reason = self.host.load_errors.get(deployment)
            if reason is None:
                raise
            raise _HttpError(
                503, "deployment_unavailable", f"deployment {deployment!r} is unavailable on this replica: {reason}"
            ) from None

    def _single_route(self) -> Route:
        routes = self.host.routes
        if len(routes) == 1 and not self.host.load_errors.keys() - routes.keys():
            return next(iter(routes.values()))
        failed = sorted(self.host.load_errors.keys() - routes.keys())
        if not routes and len(failed) == 1:
            return self._route(failed[0])
        if not routes:
            raise _HttpError(503, "unavailable", "no deployment is loaded yet")
        hosted = sorted({*routes, *failed})
        raise InvalidInput(
            f"this server hosts {len(hosted)} deployments ({', '.join(hosted)}); /invocations needs exactly "
            "one: use POST /v1/deployments/{name}/predict or /v2/models/{name}/infer"
        )

    @staticmethod
    def _version_choice(route: Route, version: int | None) -> Choice:
        if version is None:
            return route.live[0]
        choice = route.by_version.get(version)
        if choice is None:
            raise NotFound(f"deployment {route.spec.name!r} serves no version {version}")
        return choice

    async def _error(
        self,
        send: Send,
        protocol: WireProtocol,
        status: int,
        code: str,
        message: str,
        request_id: str,
        version_label: bytes | None = None,
    ) -> None:
        await _send(send, status, protocol.error(code, message), _JSON, request_id, version_label)

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

    def _on_change(self, host: ModelHost) -> None:
        self.metrics.set_load_failures({(name, reason.split(":", 1)[0]) for name, reason in host.load_errors.items()})
        self.metrics.set_models(
            {
                (name, c.version.model, str(c.version.version), c.version.role, c.served.model.flavor)
                for name, route in host.routes.items()
                for c in route.by_version.values()
            }
        )

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
                if self._shadow_tasks:
                    await asyncio.gather(*self._shadow_tasks, return_exceptions=True)
                await self.host.stop()
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
    batching: BatchingConfig | None = None,
) -> ServingApp:
    """The serving ASGI app for `host`; its lifespan loads the deployments (`await host.start()`) and stops them.

    Without a lifespan (httpx's `ASGITransport`), call `await host.start()` before the first request.
    """
    return ServingApp(
        host, request_log=request_log, max_body_bytes=max_body_bytes, batching=batching or BatchingConfig()
    )


# --- helpers ----------------------------------------------------------------------------------------------------

_GET_ROUTES = frozenset({"/ping", "/health", "/version", "/metrics", "/healthz", "/v1/deployments"})


def _request_id(scope: Scope) -> tuple[str, bool]:
    """The client's X-Request-Id when well-formed, else a new one (and True)."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text, False
            break
    return uuid.uuid4().hex, True


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])


def _content_type(headers: dict[bytes, bytes]) -> str:
    value = headers.get(b"content-type")
    if value is None:
        return ""
    return value.split(b";", 1)[0].strip().lower().decode("latin-1")


def _media_message(content_type: str, protocol: WireProtocol) -> str:
    accepted = " or ".join(t for t in protocol.content_types if t)
    return f"unsupported Content-Type {content_type or '(none)'!r}: send {accepted}"


def _sticky_key(headers: dict[bytes, bytes], protocol: WireProtocol, parsed: Any, field: str | None) -> str | None:
    value = headers.get(b"x-loopml-key")
    if value is not None:
        return value.decode("latin-1")
    if field is None:
        return None
    found = protocol.sticky_value(parsed, field)
    return None if found is None else str(found)


async def _read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    length = headers.get(b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the body is {int(length)} bytes; this server takes at most {limit}")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise _Disconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes, the most this server takes")
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes, the most this server takes")
        chunks.append(chunk)
    return b"".join(chunks)


def _classify(error: Exception) -> tuple[int, str, str]:
    if isinstance(error, _HttpError):
        return error.status, error.code, error.message
    if isinstance(error, PayloadTooLarge):
        return 413, error.code, error.message
    if isinstance(error, NotFound):
        return 404, "not_found", error.message
    if isinstance(error, InvalidInput):
        return 400, error.code, error.message
    return 500, "internal_error", f"the server failed to answer ({type(error).__name__}); see its log"


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
