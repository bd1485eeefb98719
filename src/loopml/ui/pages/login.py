"""Login with a loopml token, logout, and the root redirect."""

from __future__ import annotations

import urllib.parse

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from loopml.governance import GovernanceService
from loopml.ui.framework import TEMPLATES, Action, LoginRequired, UiRoute, UiState, current_session, read_form
from loopml.ui.session import COOKIE, MAX_AGE_SECONDS

router = APIRouter(route_class=UiRoute, include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path of this site (no scheme, no host, no `//`): the login page is no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/experiments"
    parsed = urllib.parse.urlsplit(target)
    if parsed.scheme or parsed.netloc:
        return "/experiments"
    return target


def _login_page(next_path: str, message: str | None, status: int) -> HTMLResponse:
    page = TEMPLATES.get_template("login.html").render(
        nav=[], session=None, path="/login", next_path=next_path, message=message
    )
    return HTMLResponse(page, status)


@router.get("/")
def root() -> Response:
    return RedirectResponse("/experiments", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    try:
        current_session(request)
    except LoginRequired:
        return _login_page(_safe_next(next), None, 200)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await read_form(request)
    token = fields.get("token", "").strip()
    next_path = _safe_next(fields.get("next"))
    if not token:
        return _login_page(next_path, "Enter an API token (create one with `loopml tokens create`).", 400)
    governance: GovernanceService = request.app.state.governance
    principal = await run_in_threadpool(governance.authenticate, token)
    if principal is None:
        return _login_page(next_path, "This token is unknown or revoked.", 401)
    state: UiState = request.app.state.ui
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE,
        state.signer.sign(token),
        max_age=MAX_AGE_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(action: Action) -> Response:
    response = RedirectResponse("/login", status_code=303)
    if not action.session.embedded:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
