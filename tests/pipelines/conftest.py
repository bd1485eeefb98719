"""A client on a fresh embedded store, once on SQLite and once on PostgreSQL (the `db_url` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml as lm
from loopml.artifacts import open_artifact_store
from loopml.client.local_backend import LocalBackend
from loopml.store import MetadataStore


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[lm.Client]:
    store = MetadataStore.open(db_url)
    blobs = open_artifact_store((tmp_path / "artifacts").as_uri())
    made = lm.Client(backend=LocalBackend(store, blobs), home=tmp_path)
    yield made
    made.close()
    store.close()
