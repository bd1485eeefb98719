"""Login, logout, the session cookie and CSRF, in Chromium against a real `loopml server`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from e2e.conftest import ADMIN

from .support import UiServer, new_page, screenshot

pytestmark = pytest.mark.slow

PROTECTED = (
    "/",
    "/experiments",
    "/experiments/1",
    "/runs/" + "0" * 32,
    "/compare?run=x",
    "/ui/data/metric-history?key=a&run=b",
)
PROTECTED += (
    "/models",
    "/models/m",
    "/models/m/versions/1",
    "/deployments",
    "/deployments/d",
    "/monitors",
    "/monitors/m",
    "/audit",
    "/pipelines",
    "/pipelines/runs/r",
)
"""Pages that need a session (each section adds its own)."""


def test_no_session_redirects_to_login_then_back(ui_server: UiServer, browser: Any) -> None:
    page = new_page(browser, ui_server, None)
    page.goto("/experiments?show=all")
    assert "/login?next=" in page.url
    screenshot(page, "login")
    page.get_by_label("API token").fill("lml_not_a_token")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "This token is unknown or revoked."
    page.get_by_label("API token").fill(ADMIN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/experiments?show=all")
    cookie = next(c for c in page.context.cookies() if c["name"] == "loopml_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the session
    page.context.close()


def test_logout_needs_the_csrf_token(ui_server: UiServer, browser: Any) -> None:
    page = new_page(browser, ui_server, ADMIN)
    forged = page.request.post("/logout", form={"csrf_token": "forged"}, max_redirects=0)
    assert forged.status == 403
    missing = page.request.post("/logout", form={}, max_redirects=0)
    assert missing.status == 403
    page.goto("/experiments")
    assert page.url.endswith("/experiments")  # still logged in
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.goto("/experiments")
    assert "/login" in page.url
    page.context.close()


def test_a_revoked_token_ends_its_sessions(ui_server: UiServer, browser: Any) -> None:
    token_id, secret = ui_server.token("short-lived", "viewer")
    page = new_page(browser, ui_server, secret)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    answer = httpx.delete(f"{ui_server.url}/api/v1/tokens/{token_id}", headers=headers, timeout=30)
    assert answer.status_code in (200, 204), answer.text
    page.goto("/experiments")
    assert "/login" in page.url
    page.context.close()


def test_pages_without_a_session_redirect_and_actions_are_refused(ui_server: UiServer) -> None:
    with httpx.Client(base_url=ui_server.url, timeout=30) as http:
        for path in PROTECTED:
            answer = http.get(path)
            assert answer.status_code == (401 if path.startswith("/ui/data/") else 303), path
            if answer.status_code == 401:
                continue
            assert answer.headers["location"].startswith(("/login", "/experiments")), path
        refused = http.post("/logout", data={"csrf_token": "x"})
        assert refused.status_code == 303
        assert refused.headers["location"] == "/login"
    with httpx.Client(base_url=ui_server.url, timeout=30, cookies={"loopml_session": "dG9rZW4.forged"}) as forged:
        assert forged.get("/experiments").status_code == 303  # a cookie the server did not sign is no session


def test_concurrent_sessions_never_mix(ui_server: UiServer) -> None:
    """Many requests at once from sessions of different tokens: each page shows its own user, every time."""
    names = [f"reader-{i}" for i in range(4)]
    clients = []
    for name in names:
        _, secret = ui_server.token(name, "viewer")
        client = httpx.Client(base_url=ui_server.url, timeout=60)
        assert client.post("/login", data={"token": secret}).status_code == 303
        clients.append(client)

    def who(index: int) -> tuple[int, str]:
        page = clients[index % len(clients)].get("/experiments")
        return index % len(clients), page.text

    with ThreadPoolExecutor(max_workers=8) as pool:
        for index, text in pool.map(who, range(32)):
            assert f"token:{names[index]} · viewer" in text
    for client in clients:
        client.close()
