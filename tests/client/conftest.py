"""The conformance fixture: the same `Client` over the embedded backend and over HTTP to the server.

Each conformance test names the operations of the table it exercises with `@pytest.mark.operations(...)`; the
fixture records the operations the test really sent through the backend and fails the test if one it names was
not sent. `test_operation_table.py` fails when an operation of the table is named by no test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import loopml
from loopml.api import OPERATIONS, Operation
from loopml.artifacts import open_artifact_store
from loopml.client.backend import Backend
from loopml.client.local_backend import LocalBackend
from loopml.governance import GovernanceService
from loopml.server import build_app
from loopml.settings import Settings
from loopml.store import MetadataStore
from loopml.tracking import TrackingService

ADMIN = "lml_conformance_admin_secret"


def record_operations(backend: Backend) -> set[str]:
    """The names of the table's operations sent through `backend` from now on (by `call` or a streamed method)."""
    sent: set[str] = set()
    call = backend.call

    def recording_call(op: Operation[Any], /, **arguments: Any) -> Any:
        sent.add(op.name)
        return call(op, **arguments)

    backend.call = recording_call  # type: ignore[method-assign]
    for op in OPERATIONS.values():
        if op.backend_method is not None:
            method = getattr(backend, op.backend_method)

            def recording(*args: Any, _name: str = op.name, _method: Any = method, **kwargs: Any) -> Any:
                sent.add(_name)
                return _method(*args, **kwargs)

            setattr(backend, op.backend_method, recording)
    return sent


def _check_operations(request: pytest.FixtureRequest, sent: set[str]) -> None:
    marker = request.node.get_closest_marker("operations")
    named = set(marker.args) if marker else set()
    unknown = named - set(OPERATIONS)
    assert not unknown, f"@pytest.mark.operations names operations the table does not have: {sorted(unknown)}"
    assert named <= sent, f"the test names operations it never sent: {sorted(named - sent)}"


@pytest.fixture(params=["local", "http"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[loopml.Client]:
    """A Client on a fresh store: in-process (`local`) or through the REST API (`http`)."""
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'loopml.db'}")
    blobs = open_artifact_store((tmp_path / "artifacts").as_uri())
    if request.param == "local":
        made = loopml.Client(backend=LocalBackend(store, blobs), metric_flush_seconds=0.05)
        sent = record_operations(made.backend)
        yield made
        made.close()
        _check_operations(request, sent)
        return
    tracking, governance = TrackingService(store, blobs), GovernanceService(store)
    governance.bootstrap_admin(ADMIN)
    settings = Settings(home=tmp_path)
    with TestClient(build_app(tracking, governance, settings)) as http:
        made = loopml.Client(token=ADMIN, http_client=http, metric_flush_seconds=0.05)
        sent = record_operations(made.backend)
        yield made
        made.close()
    store.close()
    _check_operations(request, sent)
