"""What runs after a prediction's answer is sent: the observers of an `Exchange`.

    MetricsObserver     loopml_requests_total, the latency histogram, contract violations (every request)
    RequestLogObserver  a `RequestRecord` per answer, and per failure (5xx) or contract refusal
    ShadowObserver      a copy of each answered request to the deployment's shadow versions (at most
                        `MAX_SHADOW_IN_FLIGHT` at once; the others are counted as dropped)

The app calls `observe(exchange)` on each, in that order, once the response is out: an observer can neither
delay the answer nor change it, and the app logs (and otherwise ignores) an observer that raises.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from loopml.errors import InvalidInput
from loopml.serving.exchange import Exchange
from loopml.serving.host import Choice, ModelHost
from loopml.serving.inputs import ModelInput
from loopml.serving.metrics import ServingMetrics
from loopml.serving.records import RequestLogSink, RequestRecord

__all__ = ["MAX_SHADOW_IN_FLIGHT", "MetricsObserver", "Observer", "RequestLogObserver", "ShadowObserver"]

MAX_SHADOW_IN_FLIGHT = 64

logger = logging.getLogger("loopml.serving")


class Observer(Protocol):
    def observe(self, exchange: Exchange) -> None:
        """Look at a request whose answer was sent (or whose client went away: status 499)."""


class MetricsObserver:
    """Counts every request by deployment, version, protocol and status, its latency, and contract violations."""

    def __init__(self, metrics: ServingMetrics) -> None:
        self.metrics = metrics

    def observe(self, exchange: Exchange) -> None:
        choice = exchange.choice
        metrics = self.metrics
        if choice is None:
            metrics.record(exchange.deployment, "", "", exchange.protocol.name, exchange.status, exchange.elapsed)
            return
        version = choice.version
        number = str(version.version)
        metrics.record(
            exchange.deployment, version.model, number, exchange.protocol.name, exchange.status, exchange.elapsed
        )
        for _, violation in exchange.violations:
            metrics.count_violation(
                exchange.deployment, version.model, number, violation.column, violation.check, violation.severity
            )


class RequestLogObserver:
    """Appends a record per answer to the request log; failures (5xx) and contract refusals too, with their
    status: the canary analysis compares error rates, and monitors alert on the share the contract refused."""

    def __init__(self, sink: RequestLogSink) -> None:
        self.sink = sink

    def observe(self, exchange: Exchange) -> None:
        choice = exchange.choice
        if choice is None:
            return
        status = exchange.status
        version = choice.version
        if status == 200:
            probabilities = exchange.probabilities
            assert exchange.data is not None
            assert exchange.outputs is not None
            record = RequestRecord(
                request_id=exchange.request_id,
                time_ms=exchange.time_ms,
                deployment=exchange.deployment,
                model=version.model,
                version=version.version,
                role=version.role,
                inputs=exchange.data.columns,
                outputs=exchange.outputs,
                latency_ms=exchange.elapsed * 1000,
                status=200,
                protocol=exchange.protocol.name,
                sticky_key=exchange.sticky_key,
                probabilities=probabilities,
                classes=choice.served.model.classes if probabilities is not None else None,
            )
        elif status >= 500 or exchange.refused_by_contract:
            record = RequestRecord(
                request_id=exchange.request_id,
                time_ms=exchange.time_ms,
                deployment=exchange.deployment,
                model=version.model,
                version=version.version,
                role=version.role,
                inputs=exchange.data.columns if exchange.data is not None else {},
                outputs=[],
                latency_ms=exchange.elapsed * 1000,
                status=status,
                protocol=exchange.protocol.name,
                sticky_key=exchange.sticky_key,
            )
        else:
            return
        append(self.sink, record)


class ShadowObserver:
    """Sends a copy of each answered request to the deployment's shadow versions, in tasks of their own; a
    shadow's answer is logged with role "shadow" and never reaches the client, its failure is only counted."""

    def __init__(self, host: ModelHost, metrics: ServingMetrics, sink: RequestLogSink | None) -> None:
        self.host = host
        self.metrics = metrics
        self.sink = sink
        self.tasks: set[asyncio.Task[None]] = set()

    def observe(self, exchange: Exchange) -> None:
        route = exchange.route
        if exchange.status != 200 or route is None or not route.shadows:
            return
        for shadow in route.shadows:
            if len(self.tasks) >= MAX_SHADOW_IN_FLIGHT:
                self._count(exchange, shadow, "dropped")
                continue
            task = asyncio.get_running_loop().create_task(self.shadow(shadow, exchange))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Wait for the shadow copies in flight (at shutdown)."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def shadow(self, shadow: Choice, exchange: Exchange) -> None:
        """Predict `exchange`'s input with the `shadow` version; count the outcome, log the answer."""
        assert exchange.data is not None
        version = shadow.version
        served = shadow.served
        started = time.perf_counter()
        self.host.acquire(served)
        try:
            data = exchange.data
            columns = data.columns
            names = served.model.converter.names
            if tuple(columns) != names:
                missing = [n for n in names if n not in columns]
                if missing:
                    raise InvalidInput(f"the shadow version needs field {missing[0]!r}, which the request lacks")
                data = ModelInput({n: columns[n] for n in names}, data.rows)
            outputs = await served.batcher.submit(served.model.converter.to_matrix(data), data.rows)
        except Exception as error:  # a shadow's failure is counted and logged, never raised
            self._count(exchange, shadow, "failed")
            logger.warning("shadow %s failed on request %s: %s", version.label, exchange.request_id, error)
            return
        finally:
            self.host.release(served)
        self._count(exchange, shadow, "answered")
        if self.sink is not None:
            append(
                self.sink,
                RequestRecord(
                    request_id=exchange.request_id,
                    time_ms=exchange.time_ms,
                    deployment=exchange.deployment,
                    model=version.model,
                    version=version.version,
                    role="shadow",
                    inputs=data.columns,
                    outputs=outputs,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    status=200,
                    protocol=exchange.protocol.name,
                    sticky_key=exchange.sticky_key,
                ),
            )

    def _count(self, exchange: Exchange, shadow: Choice, outcome: str) -> None:
        version = shadow.version
        self.metrics.shadow.labels(exchange.deployment, version.model, str(version.version), outcome).inc()


def append(sink: RequestLogSink, record: RequestRecord) -> None:
    """Hand `record` to the request log; a log that refuses it costs the record, never the request."""
    try:
        sink.append(record)
    except Exception:
        logger.exception("the request log refused a record (request %s)", record.request_id)
