"""Micro-batching: concurrent single-row requests share predict calls and get the same answers as alone."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest

from loopml.serving import BatchingConfig, ServingApp
from loopml.serving.batching import Backlog, MicroBatcher

from .support import Packages, deployment, make_app, version


async def predict_concurrently(app: ServingApp, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    await app.host.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
            return await asyncio.gather(*(client.post("/v1/deployments/bike/predict", json=body) for body in bodies))
    finally:
        await app.host.stop()


def batch_sizes(app: ServingApp) -> tuple[float, float]:
    """(predict calls, rows) from the batch-size histogram."""
    count = app.metrics.registry.get_sample_value("loopml_batch_size_count", {"model": "bike", "version": "1"})
    total = app.metrics.registry.get_sample_value("loopml_batch_size_sum", {"model": "bike", "version": "1"})
    return count or 0.0, total or 0.0


@pytest.mark.parametrize("enabled", [True, False])
def test_concurrent_single_rows_are_grouped_and_answered_alike(packages: Packages, enabled: bool) -> None:
    records = packages.records(64)
    app, _ = make_app(
        deployment(version(packages, 1)), batching=BatchingConfig(max_batch_size=32, max_wait_ms=20, enabled=enabled)
    )
    responses = asyncio.run(predict_concurrently(app, [{"records": [row]} for row in records]))

    assert [r.status_code for r in responses] == [200] * 64
    got = [r.json()["predictions"][0] for r in responses]
    assert got == packages.expected(1, records)  # each request gets its own row's answer, as unbatched
    calls, rows = batch_sizes(app)
    assert rows == 64
    if enabled:
        assert calls < 64  # some predict calls carried more than one request
        assert (
            app.metrics.registry.get_sample_value(
                "loopml_batch_size_bucket", {"model": "bike", "version": "1", "le": "1.0"}
            )
            < calls
        )
    else:
        assert calls == 64


def test_a_batch_never_exceeds_the_max_size(packages: Packages) -> None:
    app, _ = make_app(deployment(version(packages, 1)), batching=BatchingConfig(max_batch_size=4, max_wait_ms=50))
    responses = asyncio.run(predict_concurrently(app, [{"records": [row]} for row in packages.records(40)]))
    assert all(r.status_code == 200 for r in responses)
    over = app.metrics.registry.get_sample_value(
        "loopml_batch_size_bucket", {"model": "bike", "version": "1", "le": "4.0"}
    )
    calls, _ = batch_sizes(app)
    assert over == calls  # every batch is in the <= 4 bucket


def test_a_failing_request_fails_alone() -> None:
    """When a batch's predict raises, each request is retried alone: only the bad one gets the error."""

    def predict(matrix: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if (matrix < 0).any():
            raise ValueError("negative input")
        return matrix[:, 0] * 2

    async def main() -> list[Any]:
        backlog = Backlog()
        backlog.count = 1  # one more request is on its way: the batch waits for the others
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(predict, executor, BatchingConfig(max_batch_size=8, max_wait_ms=50), backlog=backlog)
            results = await asyncio.gather(
                *(batcher.submit(np.array([[float(v)]]), 1) for v in (1, 2, -3, 4)), return_exceptions=True
            )
            await batcher.close()
            return results

    results = asyncio.run(main())
    assert results[0] == [2.0]
    assert results[1] == [4.0]
    assert isinstance(results[2], ValueError)
    assert results[3] == [8.0]
