"""Admission: what every API request passes before a route reads its body.

A pure ASGI middleware in front of the routes. For the route a request is addressed to, it

1. authenticates the bearer token (if the route depends on `CurrentPrincipal`): 401 at once, body unread;
2. refuses a declared `Content-Length` over the route's limit: 413 at once, body unread;
3. counts the bytes of a streamed body as the route reads them, and answers 413 when they pass the limit.

An early answer carries `Connection: close`, so the server stops reading the rest of a body nobody wants.
The limit is `max_request_bytes` unless the route's endpoint is given its own (artifact uploads take more).
Requests to no route go on to the router untouched (its 404 / 405 read no body). A router may come with its
own error renderer (the MLflow protocol answers errors in MLflow's shape); the default is loopml's body.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopml.domain import Principal
from loopml.errors import AuthenticationRequired, LoopmlError, PayloadTooLarge
from loopml.server.auth import PRINCIPAL_SCOPE_KEY, PrincipalCache, bearer_secret, current_principal, unknown_token
from loopml.server.errors import error_response, status_for

__all__ = ["Admission", "ErrorRenderer", "loopml_error"]


def _depends_on(dependant: Dependant, call: object) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than {limit} bytes, the most this route takes; send less per request"
    )


class _BodyCounter:
    """The route's `receive`, counting body bytes; past the limit it raises `PayloadTooLarge`."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self.limit = limit
        self.received = 0
        self.exceeded = False

    async def __call__(self) -> Message:
        if self.exceeded:
            raise _too_large(self.limit)
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.exceeded = True
                raise _too_large(self.limit)
        return message


ErrorRenderer = Callable[[LoopmlError, dict[str, str]], Response]
"""Turns a refusal (with the headers it must carry) into the answer of a router's protocol."""


def loopml_error(error: LoopmlError, headers: dict[str, str]) -> Response:
    if isinstance(error, AuthenticationRequired):
        headers = {**headers, "WWW-Authenticate": "Bearer"}
    return error_response(status_for(error), error.code, error.message, headers)


@dataclass(frozen=True)
class _Rule:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    needs_token: bool
    limit: int
    render: ErrorRenderer


def _rules(
    routers: Iterable[tuple[str, APIRouter]],
    default_limit: int,
    limits: Mapping[Callable[..., Any], int],
    renderers: Mapping[str, ErrorRenderer],
) -> tuple[_Rule, ...]:
    rules = []
    for prefix, router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                pattern, _, _ = compile_path(prefix + route.path)
                rules.append(
                    _Rule(
                        frozenset(route.methods or ()),
                        pattern,
                        _depends_on(route.dependant, current_principal),
                        limits.get(route.endpoint, default_limit),
                        renderers.get(prefix, loopml_error),
                    )
                )
    return tuple(rules)


class Admission:
    """Authenticate, then bound the body, before the route sees the request (see the module docstring).

    `routers` are the API's routers with the prefix each is served under; a route needs a token when it
    depends on `current_principal`, and takes `route_limits[endpoint]` bytes, or `max_request_bytes`.
    `error_renderers` give the refusals of the routers served under a prefix the shape of their protocol.
    """

    def __init__(
        self,
        app: ASGIApp,
        routers: Iterable[tuple[str, APIRouter]],
        principals: PrincipalCache,
        max_request_bytes: int,
        route_limits: Mapping[Callable[..., Any], int] | None = None,
        error_renderers: Mapping[str, ErrorRenderer] | None = None,
    ) -> None:
        self.app = app
        self._principals = principals
        self._rules = _rules(routers, max_request_bytes, route_limits or {}, error_renderers or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self._rule(scope)
        if rule is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if rule.needs_token:
            try:
                scope[PRINCIPAL_SCOPE_KEY] = await self._authenticate(headers.get("authorization"))
            except AuthenticationRequired as exc:
                await _refuse(rule.render, exc, scope, receive, send, close=_has_body(headers))
                return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > rule.limit:
            await _refuse(rule.render, _too_large(rule.limit), scope, receive, send, close=True)
            return
        await self._bounded(scope, _BodyCounter(receive, rule.limit), send, rule.render)

    def _rule(self, scope: Scope) -> _Rule | None:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        method = scope["method"]
        for rule in self._rules:
            if method in rule.methods and rule.pattern.match(path):
                return rule
        return None

    async def _authenticate(self, authorization: str | None) -> Principal:
        secret = bearer_secret(authorization)
        principal = self._principals.cached(secret)
        if principal is None:  # a store lookup: off the event loop
            principal = await run_in_threadpool(self._principals.authenticate, secret)
        if principal is None:
            raise unknown_token()
        return principal

    async def _bounded(self, scope: Scope, receive: _BodyCounter, send: Send, render: ErrorRenderer) -> None:
        """Run the route; once its body passed the limit, whatever it answers becomes the 413."""
        answered = False
        replaced = False

        async def guarded_send(message: Message) -> None:
            nonlocal answered, replaced
            if receive.exceeded and not answered:
                replaced = answered = True
                await _refuse(render, _too_large(receive.limit), scope, _disconnected, send, close=True)
                return
            if replaced:
                return
            answered = True
            await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        except Exception:
            # Past the limit, whatever the route raised (the limit error itself, or an error wrapping it) is
            # the client's oversized body, not a server failure.
            if answered or not receive.exceeded:
                raise
            await _refuse(render, _too_large(receive.limit), scope, _disconnected, send, close=True)


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


def _has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


async def _refuse(
    render: ErrorRenderer, error: LoopmlError, scope: Scope, receive: Receive, send: Send, *, close: bool
) -> None:
    response = render(error, {"Connection": "close"} if close else {})
    await response(scope, receive, send)
