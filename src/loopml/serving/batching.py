"""Adaptive micro-batching: concurrent requests for one model version share one predict call.

A scikit-learn predict costs nearly the same for 32 rows as for 1, so under load grouping requests multiplies
throughput. Each `MicroBatcher` has one worker task. It takes the first queued request, then everything queued
behind it, up to `max_batch_size` rows. It waits for more (at most `max_wait_ms` after the first request
arrived) only while requests the app has already accepted are still on their way to a batcher (the
`Backlog` is not empty): when nobody is coming, waiting cannot pay and the batch goes at once, so a lone
client never pays the wait. Under load the batches form by themselves from what queued during the previous predict.
A batch whose predict fails is retried request by request, so one bad request fails alone.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Backlog", "BatchingConfig", "MicroBatcher"]


@dataclass(frozen=True)
class BatchingConfig:
    """`max_batch_size` rows per predict, `max_wait_ms` longest wait for a batch to fill; `enabled=False` off."""

    max_batch_size: int = 32
    max_wait_ms: float = 2.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if type(self.max_batch_size) is not int or self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be a positive integer, got {self.max_batch_size!r}")
        if not 0 <= self.max_wait_ms <= 1000:
            raise ValueError(f"max_wait_ms must be between 0 and 1000, got {self.max_wait_ms!r}")


class Backlog:
    """How many prediction requests the app has accepted and not yet handed to a micro-batcher.

    Shared by the app (which counts) and every micro-batcher of the host (which reads): while requests are on
    their way, a batch waits for them (up to `max_wait_ms`); when none is, it goes at once."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


@dataclass
class _Item:
    matrix: Any
    rows: int
    future: asyncio.Future[list[Any]]
    arrived: float


class MicroBatcher:
    """Groups `submit` calls into batched `predict` calls run on `executor`; results come back per request.

    `observe(size)` is told each batch's row count (the batch-size histogram); `backlog` counts requests the
    app has accepted but not yet submitted anywhere.
    """

    def __init__(
        self,
        predict: Callable[[Any], np.ndarray[Any, Any]],
        executor: Executor,
        config: BatchingConfig,
        *,
        observe: Callable[[int], None] = lambda _size: None,
        backlog: Backlog | None = None,
    ) -> None:
        self._predict = predict
        self._executor = executor
        self._config = config
        self._observe = observe
        self._backlog = backlog if backlog is not None else Backlog()
        self._queue: deque[_Item] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, matrix: Any, rows: int) -> list[Any]:
        """The predictions for `matrix` (`rows` rows), as a list with one entry per row."""
        loop = asyncio.get_running_loop()
        if not self._config.enabled or rows >= self._config.max_batch_size or self._closed:
            self._observe(rows)
            result = await loop.run_in_executor(self._executor, self._predict, matrix)
            return _as_list(result)
        item = _Item(matrix, rows, loop.create_future(), time.monotonic())
        self._queue.append(item)
        if self._worker is None:
            self._wakeup = asyncio.Event()
            self._worker = loop.create_task(self._run(), name="loopml-micro-batcher")
        assert self._wakeup is not None
        self._wakeup.set()
        return await item.future

    async def close(self) -> None:
        """Stop the worker once the queue is empty (requests already queued are still answered)."""
        self._closed = True
        if self._worker is not None and self._wakeup is not None:
            self._wakeup.set()
            await self._worker

    async def _run(self) -> None:
        assert self._wakeup is not None
        wakeup = self._wakeup
        while True:
            if not self._queue:
                if self._closed:
                    return
                wakeup.clear()
                await wakeup.wait()
                continue
            batch = await self._collect(wakeup)
            await self._dispatch(batch)

    async def _collect(self, wakeup: asyncio.Event) -> list[_Item]:
        limit = self._config.max_batch_size
        deadline = self._queue[0].arrived + self._config.max_wait_ms / 1000
        batch: list[_Item] = []
        rows = 0
        while True:
            while self._queue and rows + self._queue[0].rows <= limit:
                item = self._queue.popleft()
                batch.append(item)
                rows += item.rows
            if self._queue or rows >= limit or self._closed or self._backlog.count <= 0:
                return batch
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return batch
            wakeup.clear()
            try:
                await asyncio.wait_for(wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                return batch

    async def _dispatch(self, batch: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        batch = [item for item in batch if not item.future.done()]  # a client that went away cancelled its own
        if not batch:
            return
        self._observe(sum(item.rows for item in batch))
        matrix = batch[0].matrix if len(batch) == 1 else _concatenate([item.matrix for item in batch])
        try:
            result = _as_list(await loop.run_in_executor(self._executor, self._predict, matrix))
            if len(result) != sum(item.rows for item in batch):
                raise ValueError(f"the model returned {len(result)} predictions for {len(batch)} requests' rows")
        except Exception as error:  # the error goes to the requests that asked
            if len(batch) == 1:
                _settle(batch[0].future, error=error)
                return
            for item in batch:  # find the request that broke the batch; the others still get their answer
                try:
                    _settle(
                        item.future, _as_list(await loop.run_in_executor(self._executor, self._predict, item.matrix))
                    )
                except Exception as single_error:
                    _settle(item.future, error=single_error)
            return
        offset = 0
        for item in batch:
            _settle(item.future, result[offset : offset + item.rows])
            offset += item.rows


def _settle(
    future: asyncio.Future[list[Any]], result: list[Any] | None = None, error: BaseException | None = None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result if result is not None else [])


def _concatenate(matrices: list[Any]) -> Any:
    first = matrices[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(matrices, axis=0)
    import pandas as pd

    return pd.concat(matrices, ignore_index=True)


def _as_list(result: np.ndarray[Any, Any]) -> list[Any]:
    values: list[Any] = np.asarray(result).tolist()
    return values
