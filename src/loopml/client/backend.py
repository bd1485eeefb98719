"""The one protocol both backends implement; the conformance suite in tests/client runs against each.

Every operation of the table (`loopml.api.OPERATIONS`) goes through `call`; only the streamed ones (artifact
upload and download) and the metric batches of the background sender have methods of their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, TypeVar

from loopml.api import Operation
from loopml.domain import ArtifactRecord, MetricColumns

R = TypeVar("R")


class Backend(Protocol):
    """Everything the SDK asks of a store: in-process (`LocalBackend`) or over HTTP (`HttpBackend`)."""

    def call(self, op: Operation[R], /, **arguments: Any) -> R:
        """Run `op` with the service method's keyword `arguments`; its result as the table declares it."""
        ...

    def log_metrics(self, run_id: str, batch: MetricColumns, batch_key: str | None = None) -> int: ...
    def log_artifact(self, run_id: str, path: str, local_file: Path) -> ArtifactRecord: ...
    def download_artifact(self, run_id: str, path: str, dest: Path) -> Path: ...
    def close(self) -> None: ...
