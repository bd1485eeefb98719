"""Feedback labels: ground truth joined to logged requests (`client.feedback`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopml.api import monitoring as ops

if TYPE_CHECKING:
    from loopml.client.client import Client


class FeedbackLabels:
    """Ground truth that arrives after the prediction, joined to logged requests by request id or business key."""

    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def log(
        self, label: Any, *, request_id: str | None = None, key: str | None = None, time_ms: int | None = None
    ) -> int:
        """One label, for the request `request_id` (or the row whose key column holds `key`)."""
        return self.log_many([{"request_id": request_id, "key": key, "label": label, "time_ms": time_ms}])

    def log_many(self, items: Sequence[Mapping[str, Any]]) -> int:
        """Up to 10,000 labels: dicts with `label` and one of `request_id` or `key` (and `time_ms`, optional)."""
        cleaned = [{k: v for k, v in item.items() if v is not None or k == "label"} for item in items]
        return self._backend.call(ops.RECORD_FEEDBACK, items=cleaned)
