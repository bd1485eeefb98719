"""Background batching of metric points: nothing lost, nothing stored twice, no false failure.

`log` only appends a tuple to a deque (atomic, no lock); a daemon thread sends what has accumulated every
`flush_seconds`, or as soon as `batch_size` points wait, as one columnar batch per run. A batch gets an
idempotency key when it is formed and keeps it until the store has acknowledged it: when an attempt fails
for a passing reason (connection refused or reset, timeout, answer cut off, 5xx, a database error in
embedded mode) the same batch is sent again, after an exponential backoff, and the store applies a key
only once, so a batch whose commit the sender never saw is not stored twice.

A batch is retried for `retry_seconds` after it was formed; a failed attempt after that gives it up.
`flush()` sends everything logged so far, waiting out the retries, and raises `DeliveryFailed` naming how
many points of which run were not stored and why: refused by the store (unknown run, no permission,
invalid value: a retry cannot fix these), or given up. Failures that a later retry fixed are not
reported. At interpreter exit the remaining points are flushed and any failure is printed to stderr.
"""

from __future__ import annotations

import atexit
import random
import sys
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from loopml.domain import MetricColumns
from loopml.errors import DeliveryFailed, LoopmlError, RemoteError

Sender = Callable[[str, MetricColumns, str], int]
"""Stores one batch: (run_id, columns, idempotency key) -> points stored."""
Point = tuple[str, str, float, int, int]
"""(run_id, key, value, step, timestamp)"""
T = TypeVar("T")

RETRY_SECONDS = 300.0
"""Default of `retry_seconds` (`LOOPML_METRIC_RETRY_SECONDS`)."""
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0


def is_transient(exc: BaseException) -> bool:
    """True for a failure a retry can fix: the server or the store failed, not the request.

    Refusals (`InvalidInput`, `NotFound`, `PermissionDenied`, ...) come back the same every time; a
    `RemoteError` (unreachable, reset, timeout, 5xx) and anything that is not a loopml error (a database
    error in embedded mode) may not."""
    return isinstance(exc, RemoteError) or not isinstance(exc, LoopmlError)


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): doubling from 0.1 s up to 5 s, jittered
    so that many clients recovering from one outage do not retry in step."""
    return min(MAX_BACKOFF, FIRST_BACKOFF * 2.0 ** min(attempt - 1, 16)) * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)


def with_retries(call: Callable[[], T], retry_seconds: float) -> T:
    """`call()`, retried with backoff on transient failures for up to `retry_seconds`; only for calls that
    are safe to repeat. The last failure is raised as it is."""
    deadline = time.monotonic() + retry_seconds
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            attempt += 1
            delay = backoff(attempt)
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)


@dataclass
class _Batch:
    seq: int
    run_id: str
    key: str
    columns: MetricColumns
    deadline: float
    """monotonic time after which a failed attempt gives the batch up"""
    failed: bool = False


class MetricBuffer:
    def __init__(
        self,
        send: Sender,
        batch_size: int = 10_000,
        flush_seconds: float = 1.0,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._send = send
        self.batch_size = batch_size
        self._flush_seconds = flush_seconds
        self.retry_seconds = retry_seconds
        self.pending: deque[Point] = deque()
        self._outbox: deque[_Batch] = deque()
        """Batches formed and keyed, oldest first; only touched under `_send_lock`."""
        self._seq = 0
        self._failed_attempts = 0
        self._retry_at = 0.0
        self._retrying = 0
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self.wake = threading.Event()
        self._closed = False
        self._failures: list[tuple[str | None, int, str]] = []
        self._thread: threading.Thread | None = None
        atexit.register(_flush_at_exit, weakref.ref(self))

    @property
    def retrying(self) -> int:
        """Points whose last delivery attempt failed and that wait for a retry."""
        return self._retrying

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
            wait = self._flush_seconds
            if self._outbox and self._failed_attempts:
                wait = min(wait, max(0.0, self._retry_at - time.monotonic()))
            self.wake.wait(wait)
            self.wake.clear()
            try:
                self._send_pending()
            except Exception as exc:  # never let the sender die: whatever this was, report it at flush
                self._record_failure(None, 0, f"the metric sender failed: {type(exc).__name__}: {exc}")

    def _take(self) -> list[Point]:
        pending, batch = self.pending, []
        take = pending.popleft
        try:
            while True:
                batch.append(take())
        except IndexError:
            return batch

    def _form_batches(self) -> None:
        """Move every pending point into keyed batches (one run each, at most `batch_size` points)."""
        points = self._take()
        if not points:
            return
        deadline = time.monotonic() + self.retry_seconds
        # Transposed once at C speed; the common case, one run logging, is then only sliced into batches.
        run_column, *transposed = zip(*points, strict=True)
        by_run: dict[str, list[tuple[object, ...]]]
        if run_column.count(run_column[0]) == len(run_column):
            by_run = {run_column[0]: transposed}
        else:
            grouped: dict[str, list[Point]] = {}
            for point in points:
                grouped.setdefault(point[0], []).append(point)
            by_run = {run_id: list(zip(*run_points, strict=True))[1:] for run_id, run_points in grouped.items()}
        for run_id, (keys, values, steps, stamps) in by_run.items():
            for start in range(0, len(keys), self.batch_size):
                end = start + self.batch_size
                columns = MetricColumns(
                    keys[start:end],  # type: ignore[arg-type]
                    values[start:end],  # type: ignore[arg-type]
                    steps[start:end],  # type: ignore[arg-type]
                    stamps[start:end],  # type: ignore[arg-type]
                )
                self._seq += 1
                self._outbox.append(_Batch(self._seq, run_id, uuid.uuid4().hex, columns, deadline))

    def _send_pending(self) -> int:
        """Form batches from the pending points and send them in order, stopping at a transient failure
        (the rest would meet the same outage) or while backing off from one. Returns the sequence number
        of the newest batch formed so far."""
        with self._send_lock:
            self._form_batches()
            if self._failed_attempts and time.monotonic() < self._retry_at:
                return self._seq
            outbox = self._outbox
            while outbox:
                batch = outbox[0]
                try:
                    self._send(batch.run_id, batch.columns, batch.key)
                except Exception as exc:
                    if is_transient(exc):
                        self._attempt_failed(batch, exc)
                        break
                    outbox.popleft()
                    self._record_failure(batch.run_id, len(batch.columns), f"{type(exc).__name__}: {exc}")
                else:
                    outbox.popleft()
                self._failed_attempts = 0  # the store answered
                if batch.failed:
                    batch.failed = False
                    self._retrying -= len(batch.columns)
            if not outbox:
                self._failed_attempts = 0
            return self._seq

    def _attempt_failed(self, batch: _Batch, exc: Exception) -> None:
        now = time.monotonic()
        self._failed_attempts += 1
        self._retry_at = now + backoff(self._failed_attempts)
        if not batch.failed:
            batch.failed = True
            self._retrying += len(batch.columns)
        expired = [b for b in self._outbox if b.deadline <= now]
        if not expired:
            return
        reason = (
            f"not delivered within {self.retry_seconds:g} s (LOOPML_METRIC_RETRY_SECONDS); "
            f"last error: {type(exc).__name__}: {exc}"
        )
        kept = [b for b in self._outbox if b.deadline > now]
        self._outbox.clear()
        self._outbox.extend(kept)
        for gone in expired:
            if gone.failed:
                self._retrying -= len(gone.columns)
            self._record_failure(gone.run_id, len(gone.columns), reason)

    def _record_failure(self, run_id: str | None, count: int, reason: str) -> None:
        with self._lock:
            self._failures.append((run_id, count, reason))

    def flush(self) -> None:
        """Send every point logged so far, retrying passing failures for up to `retry_seconds`; raise
        DeliveryFailed if any point was not stored (since the last flush), naming how many, which run and
        why."""
        target = self._send_pending()
        while True:
            with self._send_lock:
                waiting = bool(self._outbox) and self._outbox[0].seq <= target
                retry_at = self._retry_at
            if not waiting:
                break
            time.sleep(max(0.0, retry_at - time.monotonic()))
            self._send_pending()
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            raise DeliveryFailed(_describe(failures), frozenset(r for r, _, _ in failures if r is not None))

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._closed = True
            self.wake.set()


def _describe(failures: list[tuple[str | None, int, str]]) -> str:
    merged: dict[tuple[str | None, str], int] = {}
    for run_id, count, reason in failures:
        merged[run_id, reason] = merged.get((run_id, reason), 0) + count
    lost = sum(merged.values())
    parts = [
        reason if run_id is None else f"{count} points of run {run_id}: {reason}"
        for (run_id, reason), count in merged.items()
    ]
    detail = "; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")
    return f"{lost} metric points were not stored: {detail}"


def _flush_at_exit(ref: weakref.ReferenceType[MetricBuffer]) -> None:
    buffer = ref()
    if buffer is None:
        return
    try:
        buffer.close()
    except DeliveryFailed as exc:
        print(f"loopml: {exc}", file=sys.stderr)
