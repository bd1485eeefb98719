"""The request log of a serving replica: every answered request, kept durably, in sealed Parquet segments.

Path of a record: `append` (the request thread; no I/O: the record's inputs and outputs to JSON text, with
orjson, and one deque append) -> a flush thread that, every `flush_ms`, encodes what is pending as one batch
(Arrow columns) and
appends it as one checksummed frame to the open segment `segment-<replica>-<seq>.open` with one write + one
fsync, keeping the batch in memory too -> when the segment holds `seal_rows` records or is `seal_seconds` old,
a seal thread writes the batches it holds as Parquet (`segments.SCHEMA`; the file is not read back) and hands
the file to a `SegmentPublisher` (by default `LocalSegmentPublisher`: `<directory>/sealed/`). Sealing and
publishing never delay a flush.

**Durability bound.** A record is on disk (safe from `kill -9`; fsynced, so safe from power loss too, as far
as the disk honours fsync) at most `flush_ms` plus the time of one encode + write + fsync after `append`
returned: with the default `flush_ms=200`, a hard crash loses at most the records appended in the last
200 ms plus one write+fsync (a few ms on a local SSD). A frame holds one flush's batch and a torn last frame
is dropped whole, so the bound is unchanged: the records appended in the last flush interval. Flushes run on
a fixed cadence, so a slow flush does not push the next one back. Nothing that reached the disk is lost: on
start-up `recover()` seals the `.open` files a crashed process left behind (reading them back, ignoring and
counting a torn last frame) and retries publishing sealed segments that were not yet published. A segment
whose publish fails stays on disk and is retried on the next seal, close or start-up. Stopping cleanly
(`close()`, also run at interpreter exit) loses nothing.

Replicas may share a directory: file names carry a replica id (host, pid, random) and each file is claimed
with an advisory lock while a live process owns it, so only a dead replica's files are recovered.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import secrets
import socket
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from loopml.errors import InvalidInput
from loopml.serving.records import RequestRecord
from loopml.serving.segments import (
    SCHEMA,
    LocalSegmentPublisher,
    OpenSegment,
    Row,
    SegmentMeta,
    SegmentPublisher,
    claim,
    encode_rows,
    read_open_batches,
    record_row,
    segment_meta,
    warm_up,
    write_sealed,
)

__all__ = ["Recovery", "RequestLog"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recovery:
    """What `recover()` found: leftover open segments sealed (with their rows and the torn bytes ignored at
    their ends) and sealed segments that were still waiting to be published."""

    segments: int = 0
    rows: int = 0
    torn_bytes: int = 0
    unpublished: int = 0


class RequestLog:
    """Durable, batched log of request records; see the module docstring for the durability bound.

    `directory` holds the open and not-yet-published segments of every replica that shares it; `publisher`
    defaults to `LocalSegmentPublisher(directory)`. The constructor recovers what a crashed process left
    (`self.recovery`) and starts the flush and seal threads; use `with RequestLog(...) as log:` or `close()`.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        flush_ms: int = 200,
        seal_rows: int = 50_000,
        seal_seconds: float = 10,
        publisher: SegmentPublisher | None = None,
    ) -> None:
        if flush_ms <= 0 or seal_rows <= 0 or seal_seconds <= 0:
            raise InvalidInput("flush_ms, seal_rows and seal_seconds must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.flush_ms = flush_ms
        self.seal_rows = seal_rows
        self.seal_seconds = seal_seconds
        self.publisher: SegmentPublisher = publisher or LocalSegmentPublisher(self.directory)
        self.replica = _replica_id()
        self.dropped = 0
        """Records that could not be encoded (a field of the wrong type); each one is logged."""
        self._pending: deque[Row] = deque()
        self._closed = False
        self._write_lock = threading.Lock()
        self._seal_lock = threading.Lock()
        self._segment: OpenSegment | None = None
        self._segment_started = 0.0
        self._sequence = 0
        self._to_seal: deque[OpenSegment] = deque()
        self._to_publish: dict[Path, tuple[int, SegmentMeta]] = {}
        self._stop = threading.Event()
        self._seal_wake = threading.Event()
        self.recovery = self.recover()
        warm_up()
        self._flusher = threading.Thread(target=self._flush_loop, name="loopml-request-log-flush", daemon=True)
        self._sealer = threading.Thread(target=self._seal_loop, name="loopml-request-log-seal", daemon=True)
        self._flusher.start()
        self._sealer.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    def __enter__(self) -> RequestLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def append(self, record: RequestRecord) -> None:
        """Queue one record, its inputs and outputs already JSON text (`segments.record_row`); returns at once
        (the flush thread does the I/O)."""
        if self._closed:
            raise RuntimeError("the request log is closed")
        self._pending.append(record_row(record))

    @property
    def pending(self) -> int:
        """Records appended but not yet written to disk."""
        return len(self._pending)

    @property
    def unpublished(self) -> list[Path]:
        """Sealed segments this log holds whose publish has not succeeded yet."""
        return sorted(self._to_publish)

    def flush(self) -> None:
        """Write every pending record to the open segment and fsync it; raises OSError if the disk fails
        (the records are kept for the next flush)."""
        with self._write_lock:
            self._write_pending()

    def seal(self) -> None:
        """Flush, then seal the open segment and publish it (and retry any earlier failed publish) now."""
        with self._write_lock:
            self._write_pending()
            self._rotate()
        self._seal_and_publish()

    def close(self) -> None:
        """Flush, seal, publish and stop the threads. A segment whose publish fails stays on disk for the next
        `RequestLog` on this directory to publish."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._seal_wake.set()
        self._flusher.join()
        self._sealer.join()
        self.seal()
        for path, (fd, _) in list(self._to_publish.items()):
            _log.warning("request-log segment %s is not published yet; it is kept on disk", path)
            os.close(fd)
        self._to_publish.clear()

    def recover(self) -> Recovery:
        """Seal the open segments of dead processes in `directory` and publish every unpublished sealed
        segment no live process holds. Run by the constructor; safe to run again."""
        segments = rows = torn = 0
        with self._seal_lock:
            for path in sorted(self.directory.glob("segment-*.open")):
                fd = claim(path)
                if fd is None:
                    continue
                try:
                    if path.with_suffix(".parquet").exists():
                        path.unlink()  # sealed just before the crash; the Parquet file is complete
                        continue
                    sealed, ignored = self._seal_file(path)
                finally:
                    os.close(fd)
                segments, rows, torn = segments + 1, rows + sealed, torn + ignored
                if ignored:
                    _log.warning("request-log segment %s ended in a torn write: %d bytes ignored", path, ignored)
            for path in sorted(self.directory.glob("segment-*.parquet.tmp")):
                if not _open_sibling(path).exists() and (fd := claim(path)) is not None:
                    path.unlink()
                    os.close(fd)
            unpublished = 0
            for path in sorted(self.directory.glob("segment-*.parquet")):
                if path in self._to_publish or _open_sibling(path).exists() or (fd := claim(path)) is None:
                    continue
                try:
                    self._to_publish[path] = (fd, segment_meta(path))
                except Exception:
                    os.close(fd)
                    _log.exception("request-log segment %s cannot be read; it is left in place", path)
                    continue
                unpublished += 1
            self._publish_pending()
        return Recovery(segments=segments, rows=rows, torn_bytes=torn, unpublished=unpublished)

    def _flush_loop(self) -> None:
        interval = self.flush_ms / 1000
        deadline = time.monotonic() + interval
        while not self._stop.wait(max(0.0, deadline - time.monotonic())):
            # a fixed cadence: a slow flush does not push the next one back (that would widen the loss bound)
            deadline = max(deadline + interval, time.monotonic())
            try:
                with self._write_lock:
                    self._write_pending()
                    if self._segment is not None and time.monotonic() - self._segment_started >= self.seal_seconds:
                        self._rotate()
            except Exception:
                _log.exception("request-log flush failed; the records are kept and retried")

    def _seal_loop(self) -> None:
        while not self._stop.is_set():
            self._seal_wake.wait(self.seal_seconds)
            self._seal_wake.clear()
            if self._stop.is_set():
                return
            try:
                self._seal_and_publish()
            except Exception:
                _log.exception("request-log seal failed; the segment is kept and retried")

    def _write_pending(self) -> None:
        """Encode and write what is pending (caller holds the write lock), rotating at `seal_rows`."""
        pending = self._pending
        count = len(pending)
        if not count:
            return
        popleft = pending.popleft
        rows = [popleft() for _ in range(count)]
        batches, rejected = encode_rows(rows)
        if rejected:  # a field of the wrong type: drop this record, never the batch
            for index, exc in rejected:
                self.dropped += 1
                _log.error("request %r cannot be logged: %s", rows[index][0], exc)
            left_out = {index for index, _ in rejected}
            rows = [r for i, r in enumerate(rows) if i not in left_out]
        written = 0
        try:
            for batch in batches:
                offset = 0
                while offset < batch.num_rows:
                    segment = self._segment or self._open_segment()
                    take = min(batch.num_rows - offset, self.seal_rows - segment.rows)
                    segment.append(batch.slice(offset, take))
                    offset += take
                    written += take
                    if segment.rows >= self.seal_rows:
                        self._rotate()
        except OSError:
            pending.extendleft(reversed(rows[written:]))
            self._rotate()  # seal what the file holds (the failed write was cut off); go on in a fresh one
            raise

    def _open_segment(self) -> OpenSegment:
        self._sequence += 1
        self._segment = OpenSegment(self.directory / f"segment-{self.replica}-{self._sequence:06d}.open")
        self._segment_started = time.monotonic()
        return self._segment

    def _rotate(self) -> None:
        """Hand the open segment (still locked) to the seal thread; the next write opens a new one."""
        if self._segment is not None:
            self._to_seal.append(self._segment)
            self._segment = None
            self._seal_wake.set()

    def _seal_and_publish(self) -> None:
        with self._seal_lock:
            while self._to_seal:
                segment = self._to_seal[0]
                self._seal_file(segment.path, segment.table())
                self._to_seal.popleft()
                segment.close()
            self._publish_pending()

    def _seal_file(self, path: Path, table: pa.Table | None = None) -> tuple[int, int]:
        """Turn an open segment this process has claimed into a claimed, unpublished Parquet file, from `table`
        (what this process wrote to it) or else by reading the file back; returns (rows, torn bytes ignored)."""
        torn = 0
        if table is None:
            batches, torn = read_open_batches(path)
            table = pa.Table.from_batches(batches, schema=SCHEMA)
        rows = table.num_rows
        if rows:
            parquet = path.with_suffix(".parquet")
            meta = write_sealed(table, parquet)
            fd = claim(parquet)  # nobody else can hold it: its open sibling is still there and ours
            if fd is None:  # pragma: no cover - see above
                raise RuntimeError(f"{parquet} was claimed by another process")
            self._to_publish[parquet] = (fd, meta)
        path.unlink()
        return rows, torn

    def _publish_pending(self) -> None:
        for path, (fd, meta) in list(self._to_publish.items()):
            try:
                self.publisher.publish(path, meta)
            except Exception:
                _log.warning("publishing request-log segment %s failed; it is kept and retried", path, exc_info=True)
                continue
            path.unlink(missing_ok=True)
            os.close(fd)
            del self._to_publish[path]


def _replica_id() -> str:
    host = re.sub(r"[^A-Za-z0-9]+", "_", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def _open_sibling(path: Path) -> Path:
    return path.with_name(path.name.split(".", 1)[0] + ".open")


def _close_at_exit(ref: weakref.ReferenceType[RequestLog]) -> None:
    log = ref()
    if log is not None:
        with contextlib.suppress(Exception):
            log.close()
