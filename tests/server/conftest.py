"""An in-process API (TestClient over ASGI) on both metadata backends, with an admin token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loopml.store import MetadataStore

from .support import Api, TestClient, make_app


@pytest.fixture
def api_factory(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Builds the app with settings overrides (e.g. a small max_request_bytes)."""
    opened: list[tuple[TestClient, MetadataStore]] = []

    def build(**settings: object) -> Api:
        root = tmp_path / "artifacts"
        app, store = make_app(db_url, root, **settings)
        client = TestClient(app)
        opened.append((client, store))
        return Api(app=app, client=client, store=store, artifact_root=root)

    yield build
    for client, store in opened:
        client.close()
        store.close()


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    return api_factory()
