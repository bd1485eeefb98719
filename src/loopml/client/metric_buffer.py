"""Background batching of metric points, with no silent loss.

`log` only appends a tuple to a deque (atomic, no lock); a daemon thread sends what has accumulated every
`flush_seconds`, or as soon as `batch_size` points wait, as one columnar batch per run. `flush()` sends
everything now and raises `DeliveryFailed` if any point could not be stored since the last flush, naming
how many and why. Points that failed for a passing reason (server unreachable, 5xx) are kept and retried by
the next flush; at interpreter exit the remaining points are flushed and any failure is printed to stderr.
"""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable

from loopml.domain import MetricColumns
from loopml.errors import DeliveryFailed, InvalidInput, LoopmlError, NotFound, PermissionDenied

Sender = Callable[[str, MetricColumns], int]
Point = tuple[str, str, float, int, int]
"""(run_id, key, value, step, timestamp)"""
_DETERMINISTIC = (InvalidInput, NotFound, PermissionDenied)
"""Failures that a retry cannot fix: the points are reported and set aside, not retried forever."""


class MetricBuffer:
    def __init__(self, send: Sender, batch_size: int = 10_000, flush_seconds: float = 1.0) -> None:
        self._send = send
        self.batch_size = batch_size
        self._flush_seconds = flush_seconds
        self.pending: deque[Point] = deque()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self.wake = threading.Event()
        self._closed = False
        self._failures: list[str] = []
        self._failed_points = 0
        self._thread: threading.Thread | None = None
        atexit.register(_flush_at_exit, weakref.ref(self))

    def log(self, point: Point) -> None:
        """Queue one point. The caller has checked it (see `Runs.log_metric`, which inlines this)."""
        pending = self.pending
        pending.append(point)
        if len(pending) >= self.batch_size:
            self.kick()

    def kick(self) -> None:
        """Start the sender thread if needed and wake it."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(target=self._loop, name="loopml-metrics", daemon=True)
                    self._thread.start()
        if not self.wake.is_set():
            self.wake.set()

    def _loop(self) -> None:
        while not self._closed:
            self.wake.wait(self._flush_seconds)
            self.wake.clear()
            self._send_pending()

    def _take(self) -> list[Point]:
        pending, batch = self.pending, []
        take = pending.popleft
        try:
            while True:
                batch.append(take())
        except IndexError:
            return batch

    def _send_pending(self) -> None:
        with self._send_lock:
            batch = self._take()
            if not batch:
                return
            by_run: dict[str, list[Point]] = {}
            for point in batch:
                by_run.setdefault(point[0], []).append(point)
            for run_id, points in by_run.items():
                for start in range(0, len(points), self.batch_size):
                    chunk = points[start : start + self.batch_size]
                    _, keys, values, steps, stamps = zip(*chunk, strict=True)
                    try:
                        self._send(run_id, MetricColumns(keys, values, steps, stamps))
                    except _DETERMINISTIC as exc:
                        self._record_failure(run_id, len(chunk), exc)
                    except (LoopmlError, OSError) as exc:
                        # The server or the network failed: keep the points for the next flush.
                        self._record_failure(run_id, len(chunk), exc, kept=True)
                        self.pending.extendleft(reversed(chunk))

    def _record_failure(self, run_id: str, count: int, exc: BaseException, kept: bool = False) -> None:
        with self._lock:
            note = " (kept for retry)" if kept else ""
            self._failures.append(f"{count} points of run {run_id}{note}: {type(exc).__name__}: {exc}")
            if not kept:
                self._failed_points += count

    def flush(self) -> None:
        """Send every pending point now; raise DeliveryFailed if any point was not stored."""
        self._send_pending()
        with self._lock:
            failures, self._failures = self._failures, []
            lost, self._failed_points = self._failed_points, 0
            still_pending = len(self.pending)
        if failures:
            detail = "; ".join(failures[:5]) + (f"; and {len(failures) - 5} more" if len(failures) > 5 else "")
            raise DeliveryFailed(
                f"metric points were not stored ({lost} rejected, {still_pending} still waiting to be retried): "
                f"{detail}"
            )

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._closed = True
            self.wake.set()


def _flush_at_exit(ref: weakref.ReferenceType[MetricBuffer]) -> None:
    buffer = ref()
    if buffer is None:
        return
    try:
        buffer.close()
    except DeliveryFailed as exc:
        print(f"loopml: {exc}", file=sys.stderr)
