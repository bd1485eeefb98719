"""What every page of the UI is built with: the session of a request, actions with CSRF, rendering, errors.

A page is a FastAPI route on an `APIRouter(route_class=UiRoute)`; it takes `Session` (the signed-in user; no
session -> redirect to the login page) or `Action` (a POST form: session + CSRF check, else 403) and returns
`render(request, session, "template.html", **context)`. A `LoopmlError` raised by a service becomes an HTML
error page with the status the REST API would answer (`PermissionDenied` -> 403, `NotFound` -> 404, ...).
"""

from __future__ import annotations

import datetime
import hmac
import math
import urllib.parse
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

import jinja2
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from loopml.domain import Principal, Role
from loopml.errors import InvalidInput, LoopmlError, PayloadTooLarge, PermissionDenied
from loopml.governance import GovernanceService
from loopml.server.errors import status_for
from loopml.ui.session import COOKIE, EMBEDDED, SessionSigner

__all__ = [
    "CSRF_FIELD",
    "NAV",
    "Action",
    "ActionForm",
    "LoginRequired",
    "Session",
    "UiRoute",
    "UiSession",
    "UiState",
    "read_form",
    "render",
]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_BYTES = 64 * 1024
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

NAV: list[tuple[str, str]] = [("Experiments", "/experiments")]
NAV += [("Models", "/models"), ("Deployments", "/deployments"), ("Monitors", "/monitors"), ("Pipelines", "/pipelines")]
NAV += [("Audit", "/audit")]
"""The navigation bar: (label, path). A page module that adds a section appends its entry (see
docs/development.md)."""


@dataclass
class UiState:
    """Kept on `app.state.ui`: the session signer and whether this is `loopml ui` (embedded, no login)."""

    signer: SessionSigner = field(default_factory=SessionSigner)
    embedded_principal: Principal | None = None


class LoginRequired(Exception):
    """No valid session: pages redirect to the login page, data endpoints answer 401."""


@dataclass(frozen=True)
class UiSession:
    """The signed-in user of a request: who (`principal`), the CSRF token forms carry, and what they may do."""

    principal: Principal
    csrf: str
    embedded: bool

    def may(self, role: str) -> bool:
        """Whether the user's role allows `role` ("viewer", "editor", "admin"): pages offer only what it allows."""
        return self.principal.role.allows(Role(role))


def _state(request: Request) -> UiState:
    state: UiState = request.app.state.ui
    return state


def current_session(request: Request) -> UiSession:
    """The session of the request, its token checked against the token store now (a revoked token is out)."""
    state = _state(request)
    if state.embedded_principal is not None:
        return UiSession(state.embedded_principal, state.signer.csrf(EMBEDDED), embedded=True)
    cookie = request.cookies.get(COOKIE)
    secret = state.signer.unsign(cookie)
    if secret is None or cookie is None or secret == EMBEDDED:
        raise LoginRequired
    governance: GovernanceService = request.app.state.governance
    principal = governance.authenticate(secret)
    if principal is None:
        raise LoginRequired
    return UiSession(principal, state.signer.csrf(cookie), embedded=False)


Session = Annotated[UiSession, Depends(current_session)]


@dataclass(frozen=True)
class ActionForm:
    """A POSTed form whose CSRF token held: the session and the form's fields (first value of each)."""

    session: UiSession
    fields: dict[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form (first value of each), read up to `MAX_FORM_BYTES` (else 413)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise PayloadTooLarge(f"a form of the UI takes at most {MAX_FORM_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge(f"a form of the UI takes at most {MAX_FORM_BYTES} bytes")
    try:
        pairs = urllib.parse.parse_qsl(bytes(body).decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except UnicodeDecodeError:
        raise InvalidInput("the form is not UTF-8 text") from None
    except ValueError:
        raise InvalidInput("the form has more than 200 fields") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


async def current_action(request: Request) -> ActionForm:
    session = await run_in_threadpool(current_session, request)
    fields = await read_form(request)
    sent = fields.pop(CSRF_FIELD, None) or request.headers.get(CSRF_HEADER)
    if not sent or not hmac.compare_digest(sent, session.csrf):
        raise PermissionDenied("the form's CSRF token is missing or not this session's: reload the page and retry")
    return ActionForm(session, fields)


Action = Annotated[ActionForm, Depends(current_action)]


def _login_redirect(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    location = "/login" if request.method != "GET" else "/login?" + urllib.parse.urlencode({"next": target})
    response = RedirectResponse(location, status_code=303)
    if COOKIE in request.cookies:
        response.delete_cookie(COOKIE, path="/")
    return response


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/ui/data/")


class UiRoute(APIRoute):
    """A route of the UI: no session -> login; errors -> an HTML page (JSON for data endpoints); every answer
    carries the security headers (strict CSP: scripts from this origin only, no inline script)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                if _wants_json(request):
                    response = JSONResponse({"error": {"code": "unauthenticated", "message": "log in"}}, 401)
                else:
                    response = _login_redirect(request)
            except LoopmlError as error:
                response = _error_page(request, status_for(error), error.code, error.message)
            except RequestValidationError as error:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
                    for e in error.errors()
                )
                response = _error_page(request, 400, "invalid_request", problems)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return route


def _error_page(request: Request, status: int, code: str, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": {"code": code, "message": message}}, status)
    page = TEMPLATES.get_template("error.html").render(
        status=status, code=code, message=message, nav=NAV, session=None, path=request.url.path
    )
    return HTMLResponse(page, status)


def _timestamp(millis: int | None) -> str:
    if millis is None:
        return ""
    return datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.6g}"


def _duration(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return ""
    seconds = max(0, end - start) / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _size(size: int) -> str:
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"


def _query(request: Request, **changes: object) -> str:
    """The current URL's query with some parameters replaced (None removes one): for links that keep state."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    for key, value in changes.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            items.extend((key, str(v)) for v in value)
        else:
            items.append((key, str(value)))
    return "?" + urllib.parse.urlencode(items)


TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("loopml.ui", "templates"),
    autoescape=True,  # every value is text unless a template says otherwise (none does)
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters.update(timestamp=_timestamp, number=_number, size=_size)
TEMPLATES.globals.update(duration=_duration, csrf_field=CSRF_FIELD)


def render(request: Request, session: UiSession, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The page `template` with the layout's context (navigation, session, CSRF token) and `context`."""
    page = TEMPLATES.get_template(template).render(
        nav=NAV,
        session=session,
        path=request.url.path,
        query=lambda **changes: _query(request, **changes),
        **context,
    )
    return HTMLResponse(page, status)
