"""The request log: exact round trip, concurrency, sealing, crash recovery, publish retries, the loss bound."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from loopml.serving.records import RequestRecord
from loopml.serving.request_log import Recovery, RequestLog
from loopml.serving.segments import (
    SCHEMA,
    LocalSegmentPublisher,
    OpenSegment,
    SegmentMeta,
    encode_record,
    read_open_segment,
    read_segments,
)


def record(i: int, **changes: object) -> RequestRecord:
    fields: dict[str, object] = {
        "request_id": str(i),
        "time_ms": 1_700_000_000_000 + i,
        "deployment": "churn",
        "model": "churn-model",
        "version": 3,
        "role": "stable",
        "inputs": {"age": [30 + i], "plan": ["pro"]},
        "outputs": [0.25],
        "latency_ms": 1.5,
        "status": 200,
        "protocol": "native",
        "sticky_key": None,
    }
    fields.update(changes)
    return RequestRecord(**fields)  # type: ignore[arg-type]


def ids(table: object) -> list[int]:
    return [int(x) for x in table.column("request_id").to_pylist()]  # type: ignore[attr-defined]


def sealed(directory: Path) -> list[Path]:
    return sorted((directory / "sealed").glob("*.parquet"))


def test_round_trip_keeps_every_field_exactly(tmp_path: Path) -> None:
    records = [
        record(0),
        record(
            1,
            deployment="fraud",
            version=12,
            role="canary",
            protocol="oip",
            status=422,
            latency_ms=0.125,
            sticky_key="user-7",
            inputs={"x": [1.5, None, 3.0], "when": [dt.date(2024, 5, 1)] * 3, "v": [np.int64(4)] * 3},
            outputs=[{"label": 1, "p": 0.9}, None, np.float64(0.5)],
        ),
        record(2, inputs={}, outputs=[], sticky_key=""),
        record(3, outputs=["yes"], probabilities=[[0.25, 0.75]], classes=["no", "yes"]),
    ]
    with RequestLog(tmp_path, flush_ms=50) as log:
        for r in records:
            log.append(r)

    [segment] = sealed(tmp_path)
    table = read_segments(tmp_path / "sealed")
    assert table.schema == SCHEMA
    assert table.to_pylist() == [
        {
            "request_id": "0",
            "time_ms": 1_700_000_000_000,
            "deployment": "churn",
            "model": "churn-model",
            "version": 3,
            "role": "stable",
            "protocol": "native",
            "status": 200,
            "latency_ms": 1.5,
            "sticky_key": None,
            "inputs": '{"age":[30],"plan":["pro"]}',
            "outputs": "[0.25]",
            "probabilities": None,
        },
        {
            "request_id": "1",
            "time_ms": 1_700_000_000_001,
            "deployment": "fraud",
            "model": "churn-model",
            "version": 12,
            "role": "canary",
            "protocol": "oip",
            "status": 422,
            "latency_ms": 0.125,
            "sticky_key": "user-7",
            "inputs": '{"x":[1.5,null,3.0],"when":["2024-05-01","2024-05-01","2024-05-01"],"v":[4,4,4]}',
            "outputs": '[{"label":1,"p":0.9},null,0.5]',
            "probabilities": None,
        },
        {
            "request_id": "2",
            "time_ms": 1_700_000_000_002,
            "deployment": "churn",
            "model": "churn-model",
            "version": 3,
            "role": "stable",
            "protocol": "native",
            "status": 200,
            "latency_ms": 1.5,
            "sticky_key": "",
            "inputs": "{}",
            "outputs": "[]",
            "probabilities": None,
        },
        {
            "request_id": "3",
            "time_ms": 1_700_000_000_003,
            "deployment": "churn",
            "model": "churn-model",
            "version": 3,
            "role": "stable",
            "protocol": "native",
            "status": 200,
            "latency_ms": 1.5,
            "sticky_key": None,
            "inputs": '{"age":[33],"plan":["pro"]}',
            "outputs": '["yes"]',
            "probabilities": '{"classes":["no","yes"],"rows":[[0.25,0.75]]}',
        },
    ]
    meta = SegmentMeta.from_json(segment.with_suffix(".json").read_bytes())
    assert meta == SegmentMeta(
        name=segment.name,
        rows=4,
        deployments=("churn", "fraud"),
        min_time_ms=1_700_000_000_000,
        max_time_ms=1_700_000_000_003,
        sha256=hashlib.sha256(segment.read_bytes()).hexdigest(),
        size_bytes=segment.stat().st_size,
    )
    assert not list(tmp_path.glob("segment-*")), "nothing is left behind after close"


def test_flush_makes_records_durable_in_the_open_segment(tmp_path: Path) -> None:
    log = RequestLog(tmp_path, flush_ms=60_000)
    for i in range(5):
        log.append(record(i))
    assert log.pending == 5
    log.flush()
    assert log.pending == 0
    [open_file] = tmp_path.glob("segment-*.open")
    columns, torn = read_open_segment(open_file)
    assert (columns["request_id"], torn) == (["0", "1", "2", "3", "4"], 0)
    assert sealed(tmp_path) == []
    log.close()
    assert ids(read_segments(tmp_path / "sealed")) == [0, 1, 2, 3, 4]


def test_values_json_cannot_hold_are_kept_as_text(tmp_path: Path) -> None:
    with RequestLog(tmp_path) as log:
        log.append(record(0, inputs={"big": [2**70], "arr": [np.arange(3)]}, outputs=[object]))
    [row] = read_segments(tmp_path / "sealed").to_pylist()
    assert orjson.loads(row["inputs"]) == repr({"big": [2**70], "arr": [np.arange(3)]})
    assert orjson.loads(row["outputs"]) == ["<class 'object'>"]


def test_a_classifiers_string_labels_are_logged_as_json_lists(tmp_path: Path) -> None:
    # numpy arrays of strings or objects are not among the dtypes orjson writes itself
    with RequestLog(tmp_path) as log:
        log.append(record(0, outputs=np.array(["yes", "no"])))
        log.append(record(1, inputs={"plan": np.array(["pro"], dtype=object)}, outputs=np.array([1.5, 2.5])[::2]))
    first, second = read_segments(tmp_path / "sealed").to_pylist()
    assert orjson.loads(first["outputs"]) == ["yes", "no"]
    assert (orjson.loads(second["inputs"]), orjson.loads(second["outputs"])) == ({"plan": ["pro"]}, [1.5])


def test_concurrent_appends_are_all_kept_in_order_per_thread(tmp_path: Path) -> None:
    threads, per_thread = 8, 5_000
    log = RequestLog(tmp_path, flush_ms=5, seal_rows=7_000)
    start = threading.Barrier(threads)

    def writer(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            log.append(record(t * per_thread + i))

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.close()

    got = ids(read_segments(tmp_path / "sealed"))
    assert len(got) == threads * per_thread
    assert sorted(got) == list(range(threads * per_thread))
    for t in range(threads):
        mine = [i for i in got if i // per_thread == t]
        assert mine == sorted(mine), "one thread's records keep their order"
    assert [pq.read_metadata(p).num_rows <= 7_000 for p in sealed(tmp_path)] == [True] * len(sealed(tmp_path))


def test_seals_every_seal_rows_records(tmp_path: Path) -> None:
    log = RequestLog(tmp_path, flush_ms=60_000, seal_rows=100)
    for i in range(250):
        log.append(record(i))
    log.close()
    files = sealed(tmp_path)
    assert [pq.read_metadata(p).num_rows for p in files] == [100, 100, 50]
    assert ids(read_segments(files)) == list(range(250))


def test_seals_a_segment_once_it_is_seal_seconds_old(tmp_path: Path) -> None:
    log = RequestLog(tmp_path, flush_ms=10, seal_seconds=0.1)
    for i in range(3):
        log.append(record(i))
    deadline = time.monotonic() + 20
    while not sealed(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    # sealed by the threads alone: no flush, seal or close was called
    assert ids(read_segments(tmp_path / "sealed")) == [0, 1, 2]
    log.close()


def write_leftover(directory: Path, records: list[RequestRecord], tail: bytes = b"") -> Path:
    """An open segment as a process that died mid-run leaves it."""
    segment = OpenSegment(directory / "segment-deadhost-1-abcdef-000001.open")
    segment.write([encode_record(r) for r in records])
    os.write(segment.fd, tail)
    segment.close()
    return segment.path


def test_recovers_a_leftover_segment_ignoring_a_torn_last_record(tmp_path: Path) -> None:
    torn = encode_record(record(5))[:-7]
    leftover = write_leftover(tmp_path, [record(i) for i in range(5)], torn)

    log = RequestLog(tmp_path)

    assert log.recovery == Recovery(segments=1, rows=5, torn_bytes=len(torn), unpublished=0)
    assert not leftover.exists()
    assert ids(read_segments(tmp_path / "sealed")) == [0, 1, 2, 3, 4]
    log.close()


def test_a_corrupted_last_record_fails_its_checksum_and_is_ignored(tmp_path: Path) -> None:
    frame = bytearray(encode_record(record(3)))
    frame[-2] ^= 0xFF
    write_leftover(tmp_path, [record(i) for i in range(3)], bytes(frame))
    with RequestLog(tmp_path) as log:
        assert log.recovery.torn_bytes == len(frame)
    assert ids(read_segments(tmp_path / "sealed")) == [0, 1, 2]


def test_a_live_replicas_open_segment_is_left_alone(tmp_path: Path) -> None:
    first = RequestLog(tmp_path, flush_ms=60_000)
    first.append(record(0))
    first.flush()
    second = RequestLog(tmp_path, flush_ms=60_000)
    assert second.recovery == Recovery()
    assert len(list(tmp_path.glob("segment-*.open"))) == 1
    second.append(record(1))
    second.close()
    first.close()
    assert sorted(ids(read_segments(tmp_path / "sealed"))) == [0, 1]


class FlakyPublisher:
    def __init__(self, directory: Path, failures: int) -> None:
        self.inner = LocalSegmentPublisher(directory)
        self.failures = failures
        self.calls = 0

    def publish(self, path: Path, meta: SegmentMeta) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError("artifact store unreachable")
        self.inner.publish(path, meta)


def test_a_failed_publish_is_retried_and_nothing_is_lost(tmp_path: Path) -> None:
    publisher = FlakyPublisher(tmp_path, failures=1)
    log = RequestLog(tmp_path, publisher=publisher, seal_seconds=3600)  # only the explicit seals below
    log.append(record(0))
    log.seal()
    [waiting] = log.unpublished
    assert waiting.exists() and sealed(tmp_path) == []
    log.append(record(1))
    log.close()
    assert publisher.calls == 3
    assert log.unpublished == []
    assert ids(read_segments(tmp_path / "sealed")) == [0, 1]


def test_a_segment_never_published_is_published_by_the_next_log(tmp_path: Path) -> None:
    log = RequestLog(tmp_path, publisher=FlakyPublisher(tmp_path, failures=10**6), seal_seconds=3600)
    for i in range(4):
        log.append(record(i))
    log.close()
    assert sealed(tmp_path) == []
    with RequestLog(tmp_path) as again:
        assert again.recovery == Recovery(unpublished=1)
    assert ids(read_segments(tmp_path / "sealed")) == [0, 1, 2, 3]


def test_a_record_that_cannot_be_encoded_is_dropped_alone(tmp_path: Path) -> None:
    with RequestLog(tmp_path) as log:
        log.append(record(0))
        log.append(record(1, version="three"))
        log.append(record(2))
    assert log.dropped == 1
    assert ids(read_segments(tmp_path / "sealed")) == [0, 2]


def test_a_failed_write_keeps_the_records_for_the_next_flush(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = RequestLog(tmp_path, flush_ms=60_000)
    log.append(record(0))
    log.flush()
    fsync, failures = os.fsync, []

    def full_disk(fd: int) -> None:
        if not failures:  # the next flush only: its frames were written, the fsync fails
            failures.append(fd)
            raise OSError(28, "No space left on device")
        fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    log.append(record(1))
    log.append(record(2))
    with pytest.raises(OSError, match="No space"):
        log.flush()
    assert log.pending == 2, "kept for the next flush"
    log.close()
    assert ids(read_segments(tmp_path / "sealed")) == [0, 1, 2]


def test_append_after_close_is_refused(tmp_path: Path) -> None:
    log = RequestLog(tmp_path)
    log.close()
    with pytest.raises(RuntimeError, match="closed"):
        log.append(record(0))


WRITER = """
import sys, time
from loopml.serving.records import RequestRecord
from loopml.serving.request_log import RequestLog

log = RequestLog(sys.argv[1], flush_ms=int(sys.argv[2]), seal_rows=700)
lines = []
seq = 0
while True:
    log.append(RequestRecord(str(seq), seq, "d", "m", 1, "stable", {"x": [seq]}, [seq], 0.1, 200, "native", None))
    lines.append(f"{seq} {time.time_ns()}")
    seq += 1
    if len(lines) == 10:
        sys.stdout.write("\\n".join(lines) + "\\n")
        sys.stdout.flush()
        lines.clear()
    time.sleep(0.001)
"""


@pytest.mark.slow
def test_kill_9_loses_at_most_the_last_flush_interval(tmp_path: Path) -> None:
    flush_ms = 200
    # The documented bound is flush_ms plus one write+fsync; the extra 100 ms is slack for a loaded shared
    # machine (scheduling and fsync delays), not part of the bound.
    slack_ms = 100
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), str(flush_ms)], stdout=subprocess.PIPE, text=True
    )
    appended: list[tuple[int, int]] = []

    def read() -> None:
        assert writer.stdout is not None
        for line in writer.stdout:
            seq, at = line.split()
            appended.append((int(seq), int(at)))

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 60
    while len(appended) < 2_000 and writer.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    killed_at = time.time_ns()
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    reader.join()
    writer.stdout.close()  # type: ignore[union-attr]
    assert writer.returncode == -signal.SIGKILL

    log = RequestLog(tmp_path)
    log.close()
    got = ids(read_segments(tmp_path / "sealed"))
    assert got == list(range(len(got))), "the records kept are a prefix: no holes, no duplicates"
    cutoff = killed_at - (flush_ms + slack_ms) * 1_000_000
    must_keep = [seq for seq, at in appended if at < cutoff]
    assert len(must_keep) > 1_000
    assert max(must_keep) < len(got), f"lost {max(must_keep) + 1 - len(got)} records older than the bound"


def test_segments_written_before_the_probabilities_column_read_back_with_it_null(tmp_path: Path) -> None:
    import struct
    import zlib

    import pyarrow as pa

    old_schema = pa.schema([field for field in SCHEMA if field.name != "probabilities"])
    row = {field.name: value for field, value in zip(old_schema, _old_row(), strict=True)}
    batch = pa.RecordBatch.from_pylist([row], schema=old_schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, old_schema) as writer:
        writer.write_batch(batch)
    body = sink.getvalue().to_pybytes()
    opened = tmp_path / "segment-old-1.open"
    opened.write_bytes(struct.pack(">4sIQ", b"LRB1", zlib.crc32(body), len(body)) + body)
    columns, torn = read_open_segment(opened)
    assert torn == 0 and columns["request_id"] == ["old"] and columns["probabilities"] == [None]
    pq.write_table(pa.Table.from_batches([batch]), tmp_path / "old.parquet")
    table = read_segments(tmp_path / "old.parquet")
    assert table.schema == SCHEMA and table.column("probabilities").to_pylist() == [None]


def _old_row() -> list[object]:
    return ["old", 1, "churn", "churn-model", 3, "stable", "native", 200, 1.5, None, '{"age":[30]}', "[0.25]"]
