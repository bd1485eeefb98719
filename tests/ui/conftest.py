"""Browser tests of the web UI: a real `loopml server` process per module, driven by Playwright in Debian's
Chromium (/usr/bin/chromium; Playwright's own browser download is never used).

Without /usr/bin/chromium the tests are skipped with the reason, except in CI (CI=true), where that fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from e2e.conftest import ServerProcess, free_port

from .support import CHROMIUM, CHROMIUM_ARGS, UiServer, require_chromium


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """One `loopml server` on SQLite for the module's tests (admin token `ADMIN`)."""
    home = tmp_path_factory.mktemp("ui-server")
    process = ServerProcess(home=home, database_url=f"sqlite:///{home / 'loopml.db'}", port=free_port())
    process.start()
    try:
        yield UiServer(process)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()
