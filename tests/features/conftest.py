"""A FeatureStore on a real metadata store (SQLite and PostgreSQL), a real artifact store and an online
store (SQLite, or the Redis server on 127.0.0.1:6379), and a definitions file writer."""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loopml.artifacts import open_artifact_store
from loopml.domain import Principal, Role
from loopml.features import FeatureStore, OnlineStore, open_online_store
from loopml.store import MetadataStore

REDIS_URL = os.environ.get("LOOPML_TEST_REDIS", "redis://127.0.0.1:6379/0")
ADMIN = Principal("ann", Role.ADMIN, None)


def redis_namespace_url() -> str:
    """The test Redis; skipped when it does not answer (a failure in CI)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and Redis is required: {error}")
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {error}")
    return REDIS_URL


@pytest.fixture
def features_store(db_url: str, tmp_path: Path) -> Iterator[FeatureStore]:
    """A feature store whose online store is the embedded SQLite one."""
    store = MetadataStore.open(db_url)
    artifacts = open_artifact_store((tmp_path / "artifacts").as_uri())
    fs = FeatureStore(store, artifacts, lambda: open_online_store("sqlite", tmp_path), tmp_path / "cache")
    yield fs
    fs.close()
    store.close()


@pytest.fixture(params=["sqlite", "redis"])
def online_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An online store setting: a fresh SQLite file, or the test Redis (each test uses its own project)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'online.db'}"
    return redis_namespace_url()


@pytest.fixture
def online(online_url: str, tmp_path: Path) -> Iterator[OnlineStore]:
    store = open_online_store(online_url, tmp_path)
    yield store
    store.close()


@pytest.fixture
def project() -> Iterator[str]:
    """A project name of its own, so tests sharing the Redis server never see each other's keys (removed
    from Redis after the test)."""
    name = f"p{uuid.uuid4().hex[:12]}"
    yield name
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
        keys = list(client.scan_iter(match=f"lm:{name}/*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    except redis.RedisError:
        pass  # no Redis: nothing was written there


@pytest.fixture
def write_definitions(tmp_path: Path) -> Callable[[str], Path]:
    """Write a definitions file (the imports are added) next to the test's data files."""

    def write(body: str, name: str = "features.py") -> Path:
        path = tmp_path / name
        header = (
            "from datetime import timedelta\n"
            "from loopml.features import (DatasetSource, Entity, FeatureService, FeatureView, Field, FileSource,\n"
            "    OnDemandFeatureView, PostgresSource)\n"
        )
        path.write_text(header + textwrap.dedent(body))
        return path

    return write


@pytest.fixture
def fs(db_url: str, online_url: str, tmp_path: Path) -> Iterator[FeatureStore]:
    """A feature store on each metadata backend x each online store."""
    store = MetadataStore.open(db_url)
    artifacts = open_artifact_store((tmp_path / "artifacts").as_uri())
    feature_store = FeatureStore(store, artifacts, lambda: open_online_store(online_url, tmp_path), tmp_path / "cache")
    yield feature_store
    feature_store.close()
    store.close()
