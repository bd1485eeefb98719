"""Helpers of the browser tests: the server under test, Chromium, logged-in pages, screenshots."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.conftest import ADMIN, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"
VIEWPORT = {"width": 1280, "height": 800}
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_chromium() -> None:
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs the chromium package")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); the browser tests need it")


@dataclass
class UiServer:
    process: ServerProcess

    @property
    def url(self) -> str:
        return self.process.uri

    def token(self, name: str, role: str) -> tuple[str, str]:
        """(id, secret) of a new API token with `role` (global), minted through the REST API with the admin token."""
        answer = httpx.post(
            f"{self.url}/api/v1/tokens",
            json={"name": name, "role": role},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=30,
        )
        answer.raise_for_status()
        body = answer.json()
        return str(body["token"]["id"]), str(body["secret"])


def new_page(browser: Any, server: UiServer, token: str | None) -> Any:
    """A fresh browser context (own cookies) at 1280x800, logged in with `token` unless it is None."""
    context = browser.new_context(viewport=VIEWPORT, base_url=server.url)
    context.set_default_timeout(30_000)
    page = context.new_page()
    if token is not None:
        page.goto("/login")
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/experiments")
    return page


def screenshot(page: Any, name: str) -> None:
    """docs/ui/<name>.png at 1280x800: the pictures docs/ui.md shows."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
