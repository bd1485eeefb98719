"""A separate writer process for the end-to-end tests (run as `python writer.py MODE URI TOKEN ...`)."""

from __future__ import annotations

import os
import sys

import loopml
from loopml.domain import Metric, MetricColumns


def concurrent(uri: str, token: str, experiment: str, points: int) -> None:
    """Log `points` points of one run through the fluent SDK (background batches of 1,000)."""
    loopml.set_tracking_uri(uri, token)
    client = loopml.Client(uri, token=token, metric_batch_size=1000, metric_flush_seconds=0.05)
    run = client.runs.create(experiment, f"writer-{os.getpid()}")
    for step in range(points):
        client.runs.log_metric(run.id, "loss", 1.0 / (step + 1), step=step)
    client.runs.end(run.id)
    client.close()
    print(run.id)


def acknowledged(uri: str, token: str, run_id: str, ack_file: str) -> None:
    """Send batches of 500 points synchronously; after each acknowledgement append the total to ack_file."""
    client = loopml.Client(uri, token=token)
    total = 0
    with open(ack_file, "a", buffering=1) as acks:
        while True:
            batch = [Metric("loss", float(total + i), total + i, 1_000 + total + i) for i in range(500)]
            try:
                client.backend.log_metrics(run_id, MetricColumns.from_points(batch))
            except Exception:  # the server is being killed mid-request: stop sending
                return
            total += len(batch)
            acks.write(f"{total}\n")
            os.fsync(acks.fileno())


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "concurrent":
        concurrent(args[0], args[1], args[2], int(args[3]))
    else:
        acknowledged(args[0], args[1], args[2], args[3])
