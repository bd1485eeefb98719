"""Features at serving time: a deployment that names a feature service gets its features from the online store
before `predict`, from the entity keys the request carries.

`FeatureFetcher` batches the lookups of concurrent requests: a request queues its entity keys; while one read
of the online store (one Redis pipeline, or one SQLite query per view) is in flight, the requests that arrive
queue up and go together in the next read. A lone request is read at once, so batching adds no wait; under
load, N requests cost about one round trip instead of N. Reads run in the fetcher's own thread, never on the
event loop.

A value is missing when the entity has no row in a view, or its row is older than the view's TTL (the rule
training sets follow: the point-in-time join never uses a row beyond its TTL). What a missing value does is the
deployment's `missing_features` setting: `refuse` (a 404 `features_not_found` naming the entity and the view)
or `default` (the feature's declared default, null when it declares none).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.domain import Principal, Role
from loopml.errors import InvalidInput, LoopmlError, StoreUnavailable
from loopml.serving.exchange import HttpError

if TYPE_CHECKING:
    from loopml.features import FeatureStore, OnlineFeatures, ServingPlan

__all__ = ["MISSING_FEATURES", "FeatureFetcher", "ServedFeatures"]

logger = logging.getLogger("loopml.serving")

MISSING_FEATURES = ("refuse", "default")
PLAN_SECONDS = 5.0
"""How long a replica reuses what it read of a feature service's definition (an apply shows within this)."""
REPLICA = Principal("loopml:serving", Role.VIEWER, None)


@dataclass(frozen=True)
class ServedFeatures:
    """The features of one request: columns (one value per row) and, per view, the age of each value."""

    columns: dict[str, list[Any]]
    age_seconds: dict[str, list[float | None]]


@dataclass
class _Waiting:
    entities: dict[str, list[Any]]
    rows: int
    future: asyncio.Future[OnlineFeatures]


class FeatureFetcher:
    """Online lookups of feature services for a replica, batched across concurrent requests."""

    def __init__(self, open_store: Callable[[], FeatureStore], max_batch_rows: int = 4096) -> None:
        self._open_store = open_store
        self._store: FeatureStore | None = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="loopml-features")
        self._pending: dict[tuple[str, str], list[_Waiting]] = {}
        self._running: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._plans: dict[tuple[str, str], tuple[float, ServingPlan]] = {}
        self.max_batch_rows = max_batch_rows
        self.reads = 0
        """Reads of the online store made so far (requests served per read measure the batching)."""

    def store(self) -> FeatureStore:
        with self._lock:
            if self._store is None:
                self._store = self._open_store()
            return self._store

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    async def plan(self, project: str, service: str) -> ServingPlan:
        """The entity keys and feature columns of `service` (cached for `PLAN_SECONDS`)."""
        key = (project, service)
        cached = self._plans.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < PLAN_SECONDS:
            return cached[1]
        loop = asyncio.get_running_loop()
        try:
            found = await loop.run_in_executor(self._executor, self._plan, project, service)
        except LoopmlError as error:
            raise HttpError(503, "features_unavailable", f"feature service {service!r}: {error.message}") from None
        self._plans[key] = (now, found)
        return found

    def _plan(self, project: str, service: str) -> ServingPlan:
        return self.store().serving_plan(REPLICA, service, project)

    async def fetch(
        self, project: str, service: str, entities: dict[str, list[Any]], rows: int, missing: str
    ) -> ServedFeatures:
        """The features of `service` for the request's entities (`rows` of them), per the `missing` setting."""
        loop = asyncio.get_running_loop()
        key = (project, service)
        waiting = _Waiting(entities, rows, loop.create_future())
        self._pending.setdefault(key, []).append(waiting)
        if key not in self._running:
            self._running.add(key)
            task = loop.create_task(self._drain(key))
            self._tasks.add(task)  # a reference, so the task is not collected mid-way
            task.add_done_callback(self._tasks.discard)
        found = await waiting.future
        if missing == "refuse":
            _refuse_missing(found, entities, rows)
        keys = set(entities)
        columns = {name: values for name, values in found.values.items() if name not in keys}
        return ServedFeatures(columns, found.age_seconds)

    async def _drain(self, key: tuple[str, str]) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending.get(key):
                queue = self._pending.pop(key)
                batch: list[_Waiting] = []
                rest: list[_Waiting] = []
                total = 0
                for waiting in queue:
                    if batch and total + waiting.rows > self.max_batch_rows:
                        rest.append(waiting)
                    else:
                        batch.append(waiting)
                        total += waiting.rows
                if rest:
                    self._pending[key] = rest + self._pending.get(key, [])
                merged: dict[str, list[Any]] = {name: [] for name in batch[0].entities}
                for waiting in batch:
                    for name, values in merged.items():
                        values.extend(waiting.entities[name])
                try:
                    found = await loop.run_in_executor(self._executor, self._read, key, merged)
                except Exception as error:  # the store's failure: every request of the batch gets it
                    failure = _as_http(error, key[1])
                    for waiting in batch:
                        if not waiting.future.done():
                            waiting.future.set_exception(failure)
                    continue
                start = 0
                for waiting in batch:
                    stop = start + waiting.rows
                    part = _slice(found, start, stop)
                    start = stop
                    if not waiting.future.done():
                        waiting.future.set_result(part)
        finally:
            self._running.discard(key)

    def _read(self, key: tuple[str, str], entities: dict[str, list[Any]]) -> OnlineFeatures:
        self.reads += 1
        project, service = key
        return self.store().online(REPLICA, service, entities, project, expire=True)


def _slice(found: OnlineFeatures, start: int, stop: int) -> OnlineFeatures:
    from loopml.domain.features import OnlineFeatures

    return OnlineFeatures(
        {name: values[start:stop] for name, values in found.values.items()},
        {view: ages[start:stop] for view, ages in found.age_seconds.items()},
    )


def _refuse_missing(found: OnlineFeatures, entities: dict[str, list[Any]], rows: int) -> None:
    for view, ages in found.age_seconds.items():
        for row, age in enumerate(ages):
            if age is None:
                key = ", ".join(f"{name}={values[row]!r}" for name, values in entities.items())
                where = f"row {row}: " if rows > 1 else ""
                raise HttpError(
                    404,
                    "features_not_found",
                    f"{where}feature view {view!r} has no value for {key} within its TTL (materialize or push "
                    "it, or deploy with missing_features='default' to serve the declared defaults)",
                )


def _as_http(error: Exception, service: str) -> Exception:
    if isinstance(error, StoreUnavailable):
        return HttpError(503, "features_unavailable", f"the online store failed: {error.message}")
    if isinstance(error, InvalidInput):
        return error
    if isinstance(error, LoopmlError):
        return HttpError(503, "features_unavailable", f"feature service {service!r}: {error.message}")
    logger.error("an online lookup of feature service %r failed", service, exc_info=error)
    return HttpError(503, "features_unavailable", f"the online lookup failed ({type(error).__name__})")
