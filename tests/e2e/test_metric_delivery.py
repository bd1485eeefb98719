"""Metric delivery against a real `loopml server` behind a fault-injecting proxy, and across kill -9.

Each test logs points through the fluent SDK, breaks the way to the server on purpose, then reads every
point back from the server directly: each (key, step) must be stored exactly once, the run must end
FINISHED, and no exception may reach the user.
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

import loopml
from loopml.client import fluent
from loopml.domain import RunStatus
from loopml.errors import DeliveryFailed

from .conftest import ADMIN, ServerProcess
from .fault_proxy import Fault, FaultProxy

pytestmark = pytest.mark.slow
KEYS = ("loss", "acc")


def _client(uri: str, timeout: float = 60.0, retry_seconds: float | None = None) -> loopml.Client:
    """Batches of at most 200 points, sent every 50 ms: thousands of points make dozens of requests."""
    return loopml.Client(
        uri,
        token=ADMIN,
        http_client=httpx.Client(base_url=uri, timeout=timeout),
        metric_batch_size=200,
        metric_flush_seconds=0.05,
        metric_retry_seconds=retry_seconds,
    )


def _log(run: fluent.ActiveRun, steps: range) -> None:
    for step in steps:
        run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 10_000}, step=step)


def _assert_stored_once(server: ServerProcess, run_id: str, steps: int) -> None:
    with loopml.Client(server.uri, token=ADMIN) as reader:
        assert reader.runs.get(run_id).status is RunStatus.FINISHED
        counts = Counter((key, m.step) for key in KEYS for m in reader.runs.history(run_id, key))
    missing = {(key, step) for key in KEYS for step in range(steps)} - set(counts)
    twice = {point: n for point, n in counts.items() if n != 1}
    assert (missing, twice) == (set(), {})
    assert sum(counts.values()) == len(KEYS) * steps


@pytest.mark.parametrize("fault", ["reset", "reset_after_commit", "cut", "stall"])
def test_every_point_is_stored_once_through_transport_faults(
    server: ServerProcess, fault: Fault, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stall outlasts a short client timeout; everything else would pass a long one.
    with FaultProxy(server.port, lambda n: fault if n in (2, 5) else None) as proxy:
        client = _client(proxy.uri, timeout=3.0 if fault == "stall" else 60.0)
        monkeypatch.setattr(fluent, "_default", client)
        with loopml.start_run(experiment="faults", capture_environment=False) as run:
            _log(run, range(2_000))  # 4,000 points: at least 20 requests
        client.close()
        assert proxy.faults == [(2, fault), (5, fault)]
        assert proxy.seen >= 22  # the two broken requests were sent again
    _assert_stored_once(server, run.id, 2_000)


def test_every_point_is_stored_once_across_a_server_killed_and_restarted(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(server.uri)
    monkeypatch.setattr(fluent, "_default", client)
    with loopml.start_run(experiment="kill-9", capture_environment=False) as run:
        _log(run, range(0, 2_000))  # the sender is busy with these when the server dies
        server.kill_hard()
        _log(run, range(2_000, 4_000))  # logged while nothing listens
        server.start()  # on the same store and port
        _log(run, range(4_000, 6_000))
    client.close()
    _assert_stored_once(server, run.id, 6_000)


def test_points_the_server_never_takes_fail_the_run_with_a_loopml_error(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultProxy(server.port, lambda _: "reset") as proxy:
        client = _client(proxy.uri, retry_seconds=1.0)
        monkeypatch.setattr(fluent, "_default", client)
        run = loopml.start_run(experiment="lost", capture_environment=False)
        with pytest.raises(DeliveryFailed) as failure, run:
            _log(run, range(50))
        client.close()
    message = str(failure.value)
    assert message.startswith("100 metric points were not stored: ")
    assert f"points of run {run.id}: not delivered within 1 s (LOOPML_METRIC_RETRY_SECONDS)" in message
    assert "last error: RemoteError" in message and "httpx" not in message
    with loopml.Client(server.uri, token=ADMIN) as reader:
        assert reader.runs.get(run.id).status is RunStatus.FAILED
        assert reader.runs.history(run.id, "loss") == []


def test_ending_a_run_survives_a_lost_answer(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    with FaultProxy(server.port, lambda n: "reset" if n == 1 else None, match=b"PATCH /api/v1/runs/") as proxy:
        client = _client(proxy.uri)
        monkeypatch.setattr(fluent, "_default", client)
        with loopml.start_run(experiment="end", capture_environment=False) as run:
            _log(run, range(10))
        client.close()
        assert proxy.faults == [(1, "reset")]
        assert proxy.seen == 2
    _assert_stored_once(server, run.id, 10)
