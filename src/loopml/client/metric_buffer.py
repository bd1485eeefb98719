"""Background batching of metric points, with no silent loss.

`log` only appends to a list (a few hundred nanoseconds); a daemon thread sends what has accumulated every
`flush_seconds`, or as soon as `batch_size` points wait. `flush()` sends everything now and raises
`DeliveryFailed` if any point could not be stored since the last flush, naming how many and why. Failed
points are kept (not dropped) so a later flush can retry after a passing outage; at interpreter exit the
remaining points are flushed and any failure is printed to stderr.
"""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from collections import defaultdict, deque
from collections.abc import Callable, Sequence

from loopml.domain import Metric
from loopml.errors import DeliveryFailed, InvalidInput, LoopmlError, NotFound, PermissionDenied

Sender = Callable[[str, Sequence[Metric]], int]
_DETERMINISTIC = (InvalidInput, NotFound, PermissionDenied)
"""Failures that a retry cannot fix: the points are reported and set aside, not retried forever."""


class MetricBuffer:
    def __init__(self, send: Sender, batch_size: int = 10_000, flush_seconds: float = 1.0) -> None:
        self._send = send
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._pending: deque[tuple[str, Metric]] = deque()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._failures: list[str] = []
        self._failed_points = 0
        self._thread: threading.Thread | None = None
        atexit.register(_flush_at_exit, weakref.ref(self))

    def log(self, run_id: str, metric: Metric) -> None:
        pending = self._pending
        pending.append((run_id, metric))  # deque.append is atomic: no lock on the hot path
        if self._thread is None:
            self._start()
        if len(pending) >= self._batch_size:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._loop, name="loopml-metrics", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            self._send_pending()

    def _send_pending(self) -> None:
        with self._send_lock:
            pending, batch = self._pending, []
            take = pending.popleft
            try:
                while True:
                    batch.append(take())
            except IndexError:
                pass
            if not batch:
                return
            by_run: dict[str, list[Metric]] = defaultdict(list)
            for run_id, metric in batch:
                by_run[run_id].append(metric)
            for run_id, points in by_run.items():
                for start in range(0, len(points), self._batch_size):
                    chunk = points[start : start + self._batch_size]
                    try:
                        self._send(run_id, chunk)
                    except _DETERMINISTIC as exc:
                        self._record_failure(run_id, len(chunk), exc)
                    except (LoopmlError, OSError) as exc:
                        # The server or the network failed: keep the points for the next flush.
                        self._record_failure(run_id, len(chunk), exc, kept=True)
                        self._pending.extendleft((run_id, m) for m in reversed(chunk))

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
            still_pending = len(self._pending)
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
            self._wake.set()


def _flush_at_exit(ref: weakref.ReferenceType[MetricBuffer]) -> None:
    buffer = ref()
    if buffer is None:
        return
    try:
        buffer.close()
    except DeliveryFailed as exc:
        print(f"loopml: {exc}", file=sys.stderr)
