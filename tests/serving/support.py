"""Helpers of the serving tests: packages, specs, an in-memory request log, and uvicorn on a real socket."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import uvicorn

from loopml.serving import (
    BatchingConfig,
    DeploymentSpec,
    ModelHost,
    ServingApp,
    ServingVersion,
    StaticSpecSource,
    create_serving_app,
)
from loopml.serving.records import RequestRecord

DATA = Path(__file__).parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"
FEATURES = [
    "season", "mnth", "hr", "holiday", "weekday", "workingday", "weathersit", "temp", "atemp", "hum", "windspeed",
]  # fmt: skip


@dataclass(frozen=True)
class Packages:
    v1: Path
    v2: Path
    frame: pd.DataFrame  # held-out rows to predict on
    models: dict[int, Any]  # the fitted estimators, for expected predictions

    def records(self, n: int = 1, start: int = 0) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.frame.iloc[start : start + n][FEATURES].to_dict(orient="records")
        return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()} for row in rows]

    def expected(self, version: int, records: list[dict[str, Any]]) -> list[float]:
        predictions: list[float] = self.models[version].predict(pd.DataFrame(records, columns=FEATURES)).tolist()
        return predictions


def version(packages: Packages, number: int, *, weight: int = 100, role: str = "stable") -> ServingVersion:
    return ServingVersion("bike", number, packages.v1 if number == 1 else packages.v2, weight=weight, role=role)


def deployment(*versions: ServingVersion, name: str = "bike", sticky_key: str | None = None) -> DeploymentSpec:
    return DeploymentSpec(name=name, versions=versions, sticky_key=sticky_key)


class MemorySink:
    """A request log that keeps records in a list."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []
        self.closed = False

    def append(self, record: RequestRecord) -> None:
        self.records.append(record)

    def close(self) -> None:
        self.closed = True


def make_app(
    *specs: DeploymentSpec,
    batching: BatchingConfig | None = None,
    poll_seconds: float = 2.0,
    sink: MemorySink | None = None,
    max_body_bytes: int = 1_048_576,
) -> tuple[ServingApp, StaticSpecSource]:
    source = StaticSpecSource(specs)
    host = ModelHost(source, poll_seconds=poll_seconds, batching=batching)
    app = create_serving_app(host, request_log=sink, max_body_bytes=max_body_bytes)
    return app, source


class LiveServer:
    """uvicorn serving an app on a free port in a thread, for clients that need a real socket."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    @property
    def port(self) -> int:
        sockets = self.server.servers[0].sockets
        port: int = sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
