"""Alert rules with hysteresis, and the webhook that announces alerts.

A rule kind breaches per window (or is not evaluated yet: performance waits for the label delay). An alert of
a kind opens after `k` consecutive breaching windows and resolves at the first evaluated window that does not
breach. Its dedupe key is the monitor, the kind and the first window of the streak, so re-running a monitor
never opens the same alert twice. Each state of an alert (open, resolved) is POSTed to the webhook once it
is acknowledged with a 2xx; a failed delivery is recorded on the alert and retried on the next run, and never
makes the monitor run fail.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from loopml.domain.monitoring import Alert, MonitorWindow
from loopml.errors import InvalidInput

__all__ = ["Streak", "check_webhook_url", "deliver", "streaks", "webhook_payload"]

TIMEOUT_SECONDS = 5.0
ATTEMPTS = 3
BACKOFF_SECONDS = (0.2, 0.5)


def check_webhook_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"a webhook must be an http(s):// URL with a host, got {url!r}")
    if parts.username or parts.password:
        raise InvalidInput("a webhook URL must not carry credentials; put a secret in the path or query instead")
    if len(url) > 2000 or any(c in url for c in "\x00\r\n "):
        raise InvalidInput("the webhook URL is too long or holds whitespace or control characters")
    return url


@dataclass(frozen=True)
class Streak:
    """A run of `k` or more consecutive breaching windows: where it started, its last window, and whether a
    later evaluated window ended it (at `ended_by`)."""

    kind: str
    first_window: int
    last_window: int
    windows: int
    ended_by: int | None


def streaks(windows: Sequence[MonitorWindow], kind: str, k: int) -> Iterator[Streak]:
    """Every streak of at least `k` breaching windows of `kind`, oldest first (windows not evaluated for the
    kind are skipped: they neither extend nor break a streak)."""
    first: int | None = None
    last = count = 0
    for window in windows:
        breached = window.breaches.get(kind)
        if breached is None:
            continue
        if breached:
            if first is None:
                first, count = window.start_time, 0
            count += 1
            last = window.start_time
        else:
            if first is not None and count >= k:
                yield Streak(kind, first, last, count, window.start_time)
            first, count = None, 0
    if first is not None and count >= k:
        yield Streak(kind, first, last, count, None)


def webhook_payload(alert: Alert, deployment: str) -> dict[str, Any]:
    return {
        "event": f"alert.{'opened' if alert.state == 'open' else 'resolved'}",
        "monitor": alert.monitor,
        "deployment": deployment,
        "kind": alert.kind,
        "state": alert.state,
        "dedupe_key": alert.dedupe_key,
        "first_window": alert.first_window,
        "last_window": alert.last_window,
        "opened_at": alert.opened_at,
        "resolved_at": alert.resolved_at,
        "details": alert.details,
    }


def deliver(url: str, payload: dict[str, Any], idempotency_key: str) -> str | None:
    """POST `payload` as JSON, retrying transport errors and 5xx; None on a 2xx, else what went wrong."""
    import httpx

    error = "not attempted"
    for attempt in range(ATTEMPTS):
        try:
            response = httpx.post(
                url,
                json=payload,
                timeout=TIMEOUT_SECONDS,
                headers={"Idempotency-Key": idempotency_key, "User-Agent": "loopml-monitor"},
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            if 200 <= response.status_code < 300:
                return None
            error = f"HTTP {response.status_code}"
            if response.status_code < 500:
                return error  # the receiver refused it; retrying the same body will not help
        if attempt < len(BACKOFF_SECONDS):
            time.sleep(BACKOFF_SECONDS[attempt])
    return error
