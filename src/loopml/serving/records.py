"""What a serving replica hands to the request log: one `RequestRecord` per answered (or shadowed) request.

The request log (`loopml.serving.request_log`) implements `RequestLogSink`; the serving app calls `append`
after the response is computed, and `append` must not block (the sink buffers); at lifespan shutdown, after
the last request, it calls `close`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Protocol

__all__ = ["RequestLogSink", "RequestRecord", "Role"]

Role = Literal["stable", "canary", "shadow"]


class RequestRecord(NamedTuple):
    """One prediction request as served: the inputs as columns (name -> values), the outputs, who answered.

        A named tuple, immutable like a frozen dataclass, and built on every logged request: 1 µs instead of 4.

        `time_ms` is when the request arrived (Unix epoch, milliseconds); `latency_ms` is the server-side time to
        answer; `status` the HTTP status sent; `protocol` one of "native", "oip", "invocations"; `sticky_key` the
        routing key when the request carried one. `probabilities` (one list per row) and `classes` (their order) when
    the request asked a classifier for class probabilities.
    """

    request_id: str
    time_ms: int
    deployment: str
    model: str
    version: int
    role: str
    inputs: dict[str, list[object]]
    outputs: list[object]
    latency_ms: float
    status: int
    protocol: str
    sticky_key: str | None
    probabilities: list[list[float]] | None = None
    classes: list[object] | None = None


class RequestLogSink(Protocol):
    """Where a replica sends its request records; `append` buffers and returns at once."""

    def append(self, record: RequestRecord) -> None: ...

    def close(self) -> None:
        """Write out everything buffered; no `append` follows."""
