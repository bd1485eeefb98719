"""`StoreSegmentPublisher`: sealed request-log segments to the artifact store + the metadata store.

Pass it to `RequestLog(directory, publisher=StoreSegmentPublisher(store, artifacts))` and monitors see the
segment as soon as it is published. Publishing is idempotent: the blob is content-addressed and the segment is
registered once per sha256, so a retried publish (a process died right after it) changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from loopml.artifacts import ArtifactStore
from loopml.domain.monitoring import LogSegment
from loopml.store import MetadataStore
from loopml.store.audit import now_ms

__all__ = ["StoreSegmentPublisher"]


class SealedSegment(Protocol):
    """What a sealed segment's metadata holds (`loopml.serving.segments.SegmentMeta` has these fields)."""

    @property
    def name(self) -> str: ...
    @property
    def rows(self) -> int: ...
    @property
    def deployments(self) -> tuple[str, ...]: ...
    @property
    def min_time_ms(self) -> int: ...
    @property
    def max_time_ms(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size_bytes(self) -> int: ...


class StoreSegmentPublisher:
    """Uploads the Parquet file (its sha256 verified on upload) and registers it, in one transaction."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, actor: str = "request-log") -> None:
        self.store = store
        self.artifacts = artifacts
        self.actor = actor

    def publish(self, path: Path, meta: SealedSegment) -> None:
        with path.open("rb") as file:
            blob = self.artifacts.put(file, expected_sha256=meta.sha256)
        segment = LogSegment(
            sha256=blob.digest,
            name=meta.name,
            deployments=tuple(meta.deployments),
            min_time=meta.min_time_ms,
            max_time=meta.max_time_ms,
            rows=meta.rows,
            size=blob.size,
            created_at=now_ms(),
        )
        with self.store.write(self.actor) as unit:
            unit.monitoring.register_segment(segment)
