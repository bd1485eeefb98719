"""A small world for monitor tests: stores, a registered model version, a request log publishing to the store,
and a webhook receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from loopml.artifacts import open_artifact_store
from loopml.domain import MetricColumns, Principal, Role
from loopml.monitoring import MonitoringService, StoreSegmentPublisher
from loopml.registry import RegistryService
from loopml.serving.records import RequestRecord
from loopml.serving.request_log import RequestLog
from loopml.store import MetadataStore
from loopml.tracking import TrackingService

ADMIN = Principal("admin", Role.ADMIN, None)
EDITOR = Principal("ed", Role.EDITOR, None)
VIEWER = Principal("vi", Role.VIEWER, None)
DAY = 86_400_000
T0 = 19_700 * DAY
"""A UTC midnight (2023-12-09), so daily windows start at T0 + i * DAY."""
MANIFEST = b'{"flavor": "sklearn", "files": {}}'


class World:
    def __init__(self, db_url: str, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.store = MetadataStore.open(db_url)
        self.artifacts = open_artifact_store((tmp_path / "blobs").as_uri())
        self.tracking = TrackingService(self.store, self.artifacts)
        self.registry = RegistryService(self.store)
        self.monitoring = MonitoringService(self.store, self.artifacts, self.registry)
        self._logs = 0

    def register(self, name: str, metrics: dict[str, float] | None = None) -> int:
        """A registered version of `name` whose run logged `metrics` (the registration metrics)."""
        self.registry.get_or_create_model(ADMIN, name)
        experiment = self.tracking.get_or_create_experiment(ADMIN, "e")
        run = self.tracking.create_run(ADMIN, experiment.id)
        self.tracking.log_artifact(ADMIN, run.id, "model/loopml-model.json", [MANIFEST])
        if metrics:
            keys = list(metrics)
            batch = MetricColumns(keys, [metrics[k] for k in keys], [0] * len(keys), [T0] * len(keys))
            self.tracking.log_metrics(ADMIN, run.id, batch)
        digest = hashlib.sha256(MANIFEST).hexdigest()
        return self.registry.create_version(EDITOR, name, run.id, "model", digest, "sklearn").version

    def log(self, records: Sequence[RequestRecord]) -> None:
        """Write the records through a `RequestLog` that publishes its sealed segments to the stores."""
        self._logs += 1
        publisher = StoreSegmentPublisher(self.store, self.artifacts)
        with RequestLog(self.tmp_path / f"log{self._logs}", publisher=publisher, flush_ms=20) as log:
            for record in records:
                log.append(record)

    def close(self) -> None:
        self.store.close()


def record(
    request_id: str,
    time_ms: int,
    inputs: dict[str, list[Any]],
    outputs: list[Any],
    deployment: str = "churn",
    model: str = "churn",
    version: int = 1,
    status: int = 200,
) -> RequestRecord:
    return RequestRecord(
        request_id=request_id,
        time_ms=time_ms,
        deployment=deployment,
        model=model,
        version=version,
        role="stable",
        inputs=inputs,
        outputs=outputs,
        latency_ms=1.0,
        status=status,
        protocol="native",
        sticky_key=None,
    )


class Receiver:
    """POSTs received by a webhook server on 127.0.0.1 (JSON bodies and headers)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.url = ""


@contextmanager
def webhook_server(status: int = 200) -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            receiver.bodies.append(orjson.loads(self.rfile.read(length)))
            receiver.headers.append(dict(self.headers.items()))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/loopml"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
