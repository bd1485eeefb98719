"""The stages of a prediction request, in the order the app runs them on one `Exchange`.

    resolve_route    the deployment's `Route` (404 unknown, 503 failed to load) before the body is read
    decode           Content-Type (415), body within the limit (413), the protocol's `parse` (400)
    resolve_version  on the routing table of now (the body read was an await), sticky key, version choice
    fetch_features   for a deployment naming a feature service: the request's entity keys -> the features from
                     the online store (batched across requests), added to the model input (404 when missing)
    validate         the model input, the signature's checks (400), the data contract (422 on a blocking check)
    predict          through the version's micro-batcher; probabilities when asked; the model's refusal is a 422
    encode           the answer body in the request's protocol

Each is a function of the exchange and the collaborators it needs, testable alone; each either fills its part
of the exchange or raises the error the client gets (`exchange.classify` maps it). Bookkeeping (metrics, the
request log, shadow copies) is not a stage: observers do it after the answer is sent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Executor
from typing import Any

from loopml.errors import InvalidInput, NotFound, PayloadTooLarge
from loopml.serving.batching import Backlog
from loopml.serving.exchange import Disconnected, Exchange, HttpError
from loopml.serving.features import FeatureFetcher
from loopml.serving.host import Choice, ModelHost, Route
from loopml.serving.inputs import ModelInput
from loopml.serving.protocol import Answer, WireProtocol

__all__ = [
    "REQUEST_ID",
    "decode",
    "encode",
    "fetch_features",
    "predict",
    "read_body",
    "resolve_route",
    "resolve_version",
    "route_of",
    "validate",
    "version_of",
]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]

REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
"""A request id a client may choose (X-Request-Id, or an OIP body's `id`): what logs and headers can carry."""


def resolve_route(exchange: Exchange, host: ModelHost) -> Route:
    """The deployment's route (the single one for `/invocations`); it names the exchange's deployment."""
    route = route_of(host, exchange.named)
    exchange.route = route
    exchange.deployment = route.spec.name
    return route


async def decode(exchange: Exchange, receive: Receive, max_body_bytes: int) -> None:
    """Read and parse the body: a Content-Type the protocol takes, at most `max_body_bytes`, well-formed."""
    protocol = exchange.protocol
    headers = exchange.headers
    content_type = _content_type(headers)
    if content_type not in protocol.content_types:
        raise HttpError(415, "unsupported_media_type", _media_message(content_type, protocol))
    if protocol.name == "oip" and b"inference-header-content-length" in headers:
        raise InvalidInput("binary tensor data is not supported; send JSON tensors (binary_data=False)")
    exchange.content_type = content_type
    body = await read_body(receive, headers, max_body_bytes)
    parsed = exchange.parsed = protocol.parse(body, content_type)
    if protocol.name == "oip" and exchange.generated_id:
        oip_id = parsed.get("id", "")
        if REQUEST_ID.fullmatch(oip_id):
            exchange.request_id = oip_id  # no X-Request-Id header: the OIP id names the request in logs


def resolve_version(exchange: Exchange, host: ModelHost) -> Choice:
    """The version that answers: the one the path names, or the route's choice by the sticky key or weight.

    The body was read (an await) since `resolve_route`: the table may have been swapped, so this routes again
    on the current one. The caller acquires the version before its next await, so it cannot be unloaded
    under the request."""
    route = route_of(host, exchange.named)
    exchange.route = route
    field = route.spec.sticky_key
    value = exchange.headers.get(b"x-loopml-key")
    if value is not None:
        key: str | None = value.decode("latin-1")
    elif field is None:
        key = None
    else:
        found = exchange.protocol.sticky_value(exchange.parsed, field)
        key = None if found is None else str(found)
    exchange.sticky_key = key
    choice = route.choose(key) if exchange.version is None else version_of(route, exchange.version)
    exchange.choice = choice
    return choice


async def fetch_features(exchange: Exchange, fetcher: FeatureFetcher | None) -> None:
    """The features of the deployment's feature service, from the entity keys in the request.

    The request carries the model's inputs that are not features, plus the service's entity keys; the features
    are read from the online store and joined in as columns. The model input keeps the entity keys too (the
    model's matrix takes only its signature's columns), so the request log holds the keys and the feature
    values actually used."""
    route = exchange.route
    choice = exchange.choice
    assert route is not None, "resolve_route comes first"
    assert choice is not None, "resolve_version comes first"
    spec = route.spec
    if spec.feature_service is None:
        return
    if fetcher is None:
        raise HttpError(503, "features_unavailable", "this replica has no feature store configured")
    plan = await fetcher.plan(spec.project, spec.feature_service)
    names = choice.served.model.converter.names
    features = set(plan.outputs)
    wanted = tuple(n for n in names if n not in features) + tuple(k for k in plan.join_keys if k not in names)
    data = exchange.protocol.to_input(exchange.parsed, wanted, spec.sticky_key)
    entities = {key: data.columns[key] for key in plan.join_keys}
    served = await fetcher.fetch(spec.project, spec.feature_service, entities, data.rows, spec.missing_features)
    exchange.data = ModelInput({**data.columns, **served.columns}, data.rows)


def validate(exchange: Exchange) -> None:
    """The model input, checked against the chosen version's signature and data contract.

    A blocking contract check refuses the request (422 `contract_violation`, naming the first one); every
    violation found, warnings included, is kept on the exchange for the metrics."""
    choice = exchange.choice
    assert choice is not None, "resolve_version comes first"
    model = choice.served.model
    protocol = exchange.protocol
    parsed = exchange.parsed
    if protocol.method(parsed) == "predict_proba":
        model.check_probabilities()
        exchange.wants_probabilities = True
    assert exchange.route is not None
    data = exchange.data  # already read, with its features, when the deployment names a feature service
    if data is None:
        data = protocol.to_input(parsed, model.converter.names, exchange.route.spec.sticky_key)
    exchange.matrix = model.converter.to_matrix(data)
    exchange.data = data
    if model.contract is None:
        return
    found = model.violations(data)
    if not found:
        return
    exchange.violations = found
    for row, violation in found:
        if violation.severity == "block":
            where = f"row {row}: " if data.rows > 1 else ""
            raise HttpError(
                422,
                "contract_violation",
                f"{where}column {violation.column!r} fails the contract's {violation.check} check: "
                f"{violation.message} (block)",
            )


async def predict(exchange: Exchange, backlog: Backlog, executor: Executor) -> None:
    """The model's outputs (micro-batched) and, when asked, class probabilities (a separate call: rarer).

    The exchange leaves the backlog first: the micro-batcher waits for more requests only while the backlog
    holds some, and this one is no longer on its way."""
    choice = exchange.choice
    data = exchange.data
    assert choice is not None, "resolve_version comes first"
    assert data is not None, "validate comes first"
    if exchange.in_backlog:
        backlog.count -= 1
        exchange.in_backlog = False
    served = choice.served
    try:
        exchange.outputs = await served.batcher.submit(exchange.matrix, data.rows)
        if exchange.wants_probabilities:
            loop = asyncio.get_running_loop()
            found = await loop.run_in_executor(executor, served.model.predict_proba, exchange.matrix)
            exchange.probabilities = found.tolist()
    except (ValueError, TypeError) as error:
        # the input passed the signature and the model's own checks refused it (say, infinity where it wants
        # finite numbers): the caller's data, not the server, has to change
        raise HttpError(422, "model_refused_input", f"the model refused the input: {error}") from error


def encode(exchange: Exchange) -> bytes:
    """The answer body, in the request's protocol."""
    choice = exchange.choice
    assert choice is not None, "resolve_version comes first"
    assert exchange.outputs is not None, "predict comes first"
    model = choice.served.model
    outputs = model.converter.signature.outputs
    probabilities = exchange.probabilities
    answer = Answer(
        exchange.request_id,
        exchange.deployment,
        model.model,
        model.version,
        exchange.outputs,
        outputs.dtype if outputs else None,
        probabilities,
        model.classes if probabilities is not None else None,
    )
    return exchange.protocol.answer(exchange.parsed, answer)


# --- what the stages share with the app's other endpoints ----------------------------------------------------


def route_of(host: ModelHost, deployment: str | None) -> Route:
    """The route of `deployment`, or of the only deployment served when None (`/invocations`).

    A deployment whose model versions failed to load here is a 503 with the reason, not a 404."""
    if deployment is None:
        return _single_route(host)
    try:
        return host.route(deployment)
    except NotFound:
        reason = host.load_errors.get(deployment)
        if reason is None:
            raise
        raise HttpError(
            503, "deployment_unavailable", f"deployment {deployment!r} is unavailable on this replica: {reason}"
        ) from None


def version_of(route: Route, version: int | None) -> Choice:
    """The version numbered `version` in the route (404 when it serves none), or its first live one."""
    if version is None:
        return route.live[0]
    choice = route.by_version.get(version)
    if choice is None:
        raise NotFound(f"deployment {route.spec.name!r} serves no version {version}")
    return choice


async def read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to pass `limit` bytes."""
    length = headers.get(b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the body is {int(length)} bytes; this server takes at most {limit}")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise Disconnected
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
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes, the most this server takes")
        chunks.append(chunk)
    return b"".join(chunks)


def _single_route(host: ModelHost) -> Route:
    routes = host.routes
    failed = host.load_errors.keys() - routes.keys()
    if len(routes) == 1 and not failed:
        return next(iter(routes.values()))
    if not routes and len(failed) == 1:
        return route_of(host, next(iter(failed)))
    if not routes:
        raise HttpError(503, "unavailable", "no deployment is loaded yet")
    hosted = sorted({*routes, *failed})
    raise InvalidInput(
        f"this server hosts {len(hosted)} deployments ({', '.join(hosted)}); /invocations needs exactly "
        "one: use POST /v1/deployments/{name}/predict or /v2/models/{name}/infer"
    )


_MEDIA_TYPES: dict[bytes, str] = {}
"""Content-Type header values seen -> their media type: clients send the same few over and over."""


def _content_type(headers: dict[bytes, bytes]) -> str:
    value = headers.get(b"content-type")
    if value is None:
        return ""
    found = _MEDIA_TYPES.get(value)
    if found is None:
        found = value.split(b";", 1)[0].strip().lower().decode("latin-1")
        if len(_MEDIA_TYPES) >= 64:  # bounded: odd values from hostile clients cost a clear, not memory
            _MEDIA_TYPES.clear()
        _MEDIA_TYPES[value] = found
    return found


def _media_message(content_type: str, protocol: WireProtocol) -> str:
    accepted = " or ".join(t for t in protocol.content_types if t)
    return f"unsupported Content-Type {content_type or '(none)'!r}: send {accepted}"
