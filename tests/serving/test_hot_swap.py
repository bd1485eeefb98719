"""Hot reload: versions swap under continuous load with zero failed requests, and every answer comes from a
version that was live while the request was in flight."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref

import httpx

from loopml.serving import ModelHost, ServingApp, StaticSpecSource
from loopml.serving.host import GC_YOUNG_THRESHOLD

from .support import LiveServer, Packages, deployment, make_app, version, wait_until

SWAPS = 20


def live_version(app: ServingApp) -> int:
    route = app.host.routes.get("bike")
    return -1 if route is None else route.live[0].version.version


def test_twenty_swaps_under_load_fail_no_request(packages: Packages) -> None:
    app, source = make_app(deployment(version(packages, 1)), poll_seconds=0.02)
    records = packages.records(1)
    expected = {1: packages.expected(1, records), 2: packages.expected(2, records)}
    answers: list[tuple[float, float, int, object, str]] = []
    stop = threading.Event()

    def client(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set():
                sent = time.monotonic()
                response = http.post("/v1/deployments/bike/predict", json={"records": records})
                label = response.headers.get("x-loopml-model-version", "")
                body = response.json() if response.status_code == 200 else response.text
                answers.append((sent, time.monotonic(), response.status_code, body, label))

    with LiveServer(app) as server:
        threads = [threading.Thread(target=client, args=(server.url,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        windows: list[tuple[int, float, float]] = []  # (version, live from at earliest, live until at latest)
        current, since = 1, float("-inf")
        try:
            wait_until(lambda: len(answers) > 5)
            for swap in range(SWAPS):
                target = 2 if swap % 2 == 0 else 1
                requested = time.monotonic()
                source.set([deployment(version(packages, target))])
                wait_until(lambda target=target: live_version(app) == target)  # type: ignore[misc]
                observed = time.monotonic()
                windows.append((current, since, observed))
                current, since = target, requested
                count = len(answers)
                wait_until(lambda count=count: len(answers) >= count + 3)  # type: ignore[misc]
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        windows.append((current, since, float("inf")))

    assert len(answers) > SWAPS * 3
    failed = [a for a in answers if a[2] != 200]
    assert not failed, failed[:3]
    for sent, received, _, body, label in answers:
        number = int(label.split("/")[1])
        assert body["predictions"] == expected[number]  # type: ignore[index]
        assert any(v == number and start <= received and sent <= end for v, start, end in windows), (
            f"bike/{number} answered a request in flight {sent:.3f}-{received:.3f}, when it was not live"
        )
    assert {a[4] for a in answers} == {"bike/1", "bike/2"}


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(packages: Packages, tmp_path: object) -> None:
    from pathlib import Path

    from loopml.serving import ServingVersion

    from .support import make_app as build

    app, source = build(deployment(version(packages, 1)), poll_seconds=0.02)
    broken = ServingVersion("bike", 3, Path(str(tmp_path)) / "missing")
    with LiveServer(app) as server:
        source.set([deployment(broken)])
        wait_until(lambda: "bike" in app.host.load_errors)
        response = httpx.post(f"{server.url}/v1/deployments/bike/predict", json={"records": packages.records(1)})
        assert response.status_code == 200
        assert response.headers["x-loopml-model-version"] == "bike/1"
        assert "bike" in httpx.get(f"{server.url}/healthz").json()["load_errors"]
        source.set([deployment(version(packages, 2))])
        wait_until(lambda: live_version(app) == 2)
        assert not app.host.load_errors


def test_a_frozen_heap_still_frees_an_unloaded_version(packages: Packages) -> None:
    """`loopml serve` freezes the heap after loading models (the collections that requests trigger do not scan
    the models and libraries again and again); a version unloaded later is still collected, reference cycles
    and all, at the next change."""

    thresholds = gc.get_threshold()

    async def scenario() -> tuple[int, bool, bool]:
        host = ModelHost(StaticSpecSource([deployment(version(packages, 1))]), tune_gc=True)
        await host.start()
        try:
            frozen = gc.get_freeze_count()
            model = host.route("bike").live[0].served.model
            model.cycle = model  # type: ignore[attr-defined]  # now only the cycle collector can free it
            gone = weakref.ref(model)
            await host.apply({"bike": deployment(version(packages, 2))})  # unloads v1; `model` keeps it alive
            del model
            gc.collect()
            kept_by_the_freeze = gone() is not None  # a collection does not look at frozen objects
            await host.apply({"bike": deployment(version(packages, 1))})  # the next change unfreezes first
            return frozen, kept_by_the_freeze, gone() is None
        finally:
            await host.stop()
            gc.unfreeze()
            assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
            gc.set_threshold(*thresholds)

    frozen, kept_by_the_freeze, collected = asyncio.run(scenario())
    assert frozen > 10_000  # the libraries and the model: most of the heap
    assert kept_by_the_freeze
    assert collected
