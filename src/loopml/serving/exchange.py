"""`Exchange`: what one prediction request has become so far, handed from stage to stage and then to observers.

The stages (`loopml.serving.stages`) fill it in order (route, body, version, model input, outputs); the
observers (`loopml.serving.observers`) read it after the answer is sent. It also holds the replica's two
request-level errors and `classify`, the one place an exception becomes an HTTP status and error code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInput, NotFound, PayloadTooLarge

if TYPE_CHECKING:
    from loopml.data import Violation
    from loopml.serving.host import Choice, Route
    from loopml.serving.inputs import ModelInput
    from loopml.serving.protocol import WireProtocol

__all__ = ["Disconnected", "Exchange", "HttpError", "classify"]


class HttpError(Exception):
    """A refusal with its own status and code (415, 422, 503...): what the request gets, as it is."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Disconnected(Exception):
    """The client went away before the answer was sent (logged as 499, as nginx does)."""


class Exchange:
    """One prediction request on its way through the stages. A plain class with slots: one is built per
    request, and attribute access on slots is the cheapest Python has."""

    __slots__ = (
        "choice",
        "code",
        "content_type",
        "data",
        "deployment",
        "elapsed",
        "generated_id",
        "headers",
        "in_backlog",
        "matrix",
        "named",
        "outputs",
        "parsed",
        "probabilities",
        "protocol",
        "request_id",
        "route",
        "started",
        "status",
        "sticky_key",
        "time_ms",
        "version",
        "violations",
        "wants_probabilities",
    )

    def __init__(
        self,
        protocol: WireProtocol,
        request_id: str,
        headers: dict[bytes, bytes],
        deployment: str | None,
        version: int | None,
        *,
        generated_id: bool,
        started: float,
        time_ms: int,
    ) -> None:
        self.protocol = protocol
        self.request_id = request_id
        self.generated_id = generated_id  # the client sent no well-formed X-Request-Id: the id is ours
        self.headers = headers
        self.named = deployment  # the deployment the path names; None for /invocations (the only one served)
        self.deployment = deployment or ""  # the route's name once resolved
        self.version = version  # asked for in the path (OIP), else None: the route chooses
        self.started = started  # perf_counter() at arrival
        self.time_ms = time_ms  # Unix epoch ms at arrival (the request log's time)
        self.content_type = ""
        self.parsed: Any = None
        self.route: Route | None = None
        self.sticky_key: str | None = None
        self.choice: Choice | None = None
        self.wants_probabilities = False
        self.data: ModelInput | None = None
        self.matrix: Any = None
        self.violations: Sequence[tuple[int, Violation]] = ()
        self.outputs: list[Any] | None = None
        self.probabilities: list[list[float]] | None = None
        self.in_backlog = False  # counted in the app's backlog (accepted, not yet at a micro-batcher)
        self.status = 500
        self.code = ""  # the error code sent, for a refused request
        self.elapsed = 0.0  # seconds from arrival to the answer being sent

    @property
    def refused_by_contract(self) -> bool:
        return self.code == "contract_violation"


def classify(error: Exception) -> tuple[int, str, str]:
    """The status, code and message a request gets for `error`; anything unforeseen is a 500."""
    if isinstance(error, HttpError):
        return error.status, error.code, error.message
    if isinstance(error, PayloadTooLarge):
        return 413, error.code, error.message
    if isinstance(error, NotFound):
        return 404, "not_found", error.message
    if isinstance(error, InvalidInput):
        return 400, error.code, error.message
    return 500, "internal_error", f"the server failed to answer ({type(error).__name__}); see its log"
