"""Request-log segments on disk: the open (append-only) frame format, sealed Parquet files, publishers.

An open segment, `segment-<replica>-<seq>.open`, is a sequence of frames, one per flush (a batch of records):

    header (16 bytes, big-endian): magic b"LRB1", crc32(body), len(body)
    body: the records as one Arrow IPC stream with `SCHEMA` (`inputs`, `outputs` and `probabilities` already
          JSON text, orjson)

A reader stops at the first frame that is incomplete or fails its checksum (a write torn by a crash) and
reports how many bytes it ignored; a torn batch is dropped whole, so a crash still loses at most the records
of the last flush. Sealing turns the frames into one Parquet file with `SCHEMA` (one row per request; `inputs`
and `outputs` stay JSON text, so any model's columns fit one fixed schema) and a `SegmentMeta` (rows,
deployments, time range, sha256) that a `SegmentPublisher` ships onwards. A live `OpenSegment` keeps the
batches it wrote in memory, so sealing it does not read the file back; the file is read only to recover the
open segment of a crashed process.

Files are claimed with an advisory `flock` while a process owns them, so replicas sharing one directory
never seal or publish the same segment twice, and a crashed replica's files (its lock died with it) are
picked up by the next one to start.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import struct
import sys
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loopml.serving.records import RequestRecord

__all__ = [
    "SCHEMA",
    "LocalSegmentPublisher",
    "OpenSegment",
    "Row",
    "SegmentMeta",
    "SegmentPublisher",
    "claim",
    "encode_record",
    "encode_records",
    "encode_rows",
    "frame",
    "read_open_batches",
    "read_open_segment",
    "read_segments",
    "record_row",
    "segment_meta",
    "warm_up",
    "write_sealed",
]

SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("time_ms", pa.int64(), nullable=False),
        pa.field("deployment", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("role", pa.string(), nullable=False),
        pa.field("protocol", pa.string(), nullable=False),
        pa.field("status", pa.int32(), nullable=False),
        pa.field("latency_ms", pa.float64(), nullable=False),
        pa.field("sticky_key", pa.string(), nullable=True),
        pa.field("inputs", pa.string(), nullable=False),
        pa.field("outputs", pa.string(), nullable=False),
        # a classifier's class probabilities, when the request asked for them: JSON text
        # {"classes": [labels...], "rows": [[one probability per class, in that order], one list per row]}
        pa.field("probabilities", pa.string(), nullable=True),
    ]
)
_SCALARS = SCHEMA.names[:10]
_SCALAR_TYPES = [SCHEMA.field(name).type for name in _SCALARS]
_NOT_NULL = [i for i, name in enumerate(_SCALARS) if not SCHEMA.field(name).nullable]
_HEADER = struct.Struct(">4sIQ")
_MAGIC = b"LRB1"
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
# the columns worth dictionary-encoding in Parquet (few distinct values); ids, times and JSON texts are not
_DICTIONARY = ["deployment", "model", "version", "role", "protocol", "status", "sticky_key"]
_MAX_TEXT_BYTES = 2**31 - 1  # one `string` array's offsets are int32
Row = tuple[Any, ...]
"""A record's fields in `SCHEMA` order, `inputs` and `outputs` as JSON text (bytes): see `record_row`."""


@dataclass(frozen=True)
class SegmentMeta:
    """What a sealed segment holds, for registration: `name` is the Parquet file name."""

    name: str
    rows: int
    deployments: tuple[str, ...]
    min_time_ms: int
    max_time_ms: int
    sha256: str
    size_bytes: int

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, text: bytes | str) -> SegmentMeta:
        data = orjson.loads(text)
        return cls(**{**data, "deployments": tuple(data["deployments"])})


class SegmentPublisher(Protocol):
    """Ships a sealed segment onwards (a directory, the artifact store + metadata store).

    On return the request log deletes `path` if it is still there; on any exception the file stays on disk in
    the pending-publish state and `publish` is called again on the next seal, close or start-up. So
    `publish` must be idempotent: the same segment may arrive twice if a process dies right after it.
    """

    def publish(self, path: Path, meta: SegmentMeta) -> None: ...


class LocalSegmentPublisher:
    """Moves sealed segments into `<directory>/sealed/`, each with a `<stem>.json` metadata sidecar.

    The sidecar is written first and the Parquet file moved in last, both atomically, so a reader that lists
    `sealed/*.parquet` only ever sees complete files that have their metadata.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory) / "sealed"

    def publish(self, path: Path, meta: SegmentMeta) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / path.name
        _write_atomic(target.with_suffix(".json"), meta.to_json())
        try:
            os.replace(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            staging = target.with_name(target.name + ".tmp")
            shutil.copyfile(path, staging)
            _fsync_path(staging)
            os.replace(staging, target)
        _fsync_directory(self.directory)


class OpenSegment:
    """The append-only file a replica writes its records to, locked by this process while it is open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644)
        if not _lock(self.fd):  # pragma: no cover - names are unique per replica
            os.close(self.fd)
            raise FileExistsError(f"{path} is locked by another process")
        _fsync_directory(path.parent)
        self.rows = 0
        self.size = os.fstat(self.fd).st_size
        self.batches: list[pa.RecordBatch] = []
        """What `append` wrote, kept to seal from memory (`table`) instead of reading the file back."""

    def append(self, batch: pa.RecordBatch) -> None:
        """Write `batch` as one frame and fsync it (see `write`); once it is on disk it is also kept in memory."""
        self.write([frame(batch)], rows=batch.num_rows)
        self.batches.append(batch)

    def table(self) -> pa.Table | None:
        """The records written, from memory, or None when some were written by `write` alone."""
        if sum(b.num_rows for b in self.batches) != self.rows:
            return None
        return pa.Table.from_batches(self.batches, schema=SCHEMA)

    def write(self, frames: Sequence[bytes], rows: int | None = None) -> None:
        """Append the frames (`rows` records; by default one per frame) with one write and fsync them; on
        failure the file is cut back to its last good size (so no torn frame sits in front of later ones) and
        the error is raised."""
        joined = b"".join(frames)
        data = memoryview(joined)
        try:
            while data:
                data = data[os.write(self.fd, data) :]
            os.fsync(self.fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)
            raise
        self.size += len(joined)
        self.rows += len(frames) if rows is None else rows

    def close(self) -> None:
        """Release the file (and its lock). Call after it has been sealed and unlinked, or to abandon it."""
        self.batches = []
        with contextlib.suppress(OSError):
            os.close(self.fd)


def encode_record(record: RequestRecord) -> bytes:
    """One frame holding one record; raises if a field has the wrong type (see `encode_records`)."""
    batches, rejected = encode_records([record])
    if rejected:
        raise rejected[0][1]
    return b"".join(frame(b) for b in batches)


def record_row(record: RequestRecord) -> Row:
    """The record as a `Row`: its fields in `SCHEMA` order with `inputs` and `outputs` already JSON text.

    `RequestLog.append` keeps this instead of the record, so the request's input columns and outputs are freed
    with the request: a flush interval's worth of records held whole (a dict and a list per column each) cost a
    replica more CPU than encoding them, in collector scans and in allocations from cold memory, and encoding
    them later reads them cold. Values JSON cannot hold become text (see `encode_records`); a scalar of the
    wrong type is found by `encode_rows`.
    """
    return (
        record.request_id,
        record.time_ms,
        record.deployment,
        record.model,
        record.version,
        record.role,
        record.protocol,
        record.status,
        record.latency_ms,
        record.sticky_key,
        _dumps(record.inputs),
        _dumps(record.outputs),
        None if record.probabilities is None else _dumps({"classes": record.classes, "rows": record.probabilities}),
    )


def encode_records(records: Sequence[RequestRecord]) -> tuple[list[pa.RecordBatch], list[tuple[int, Exception]]]:
    """The records as record batches with `SCHEMA` (usually one), and the (index, error) of each record left
    out because a field has the wrong type. Scalars are converted as `str`/`int`/`float` would; inputs and
    outputs become JSON text (numpy arrays as lists), with values JSON cannot hold (Decimals, objects) written
    as their `str`, and a value orjson refuses altogether (an integer beyond 64 bits) as the text of its
    `repr`."""
    rows: list[Row] = []
    rejected: list[tuple[int, Exception]] = []
    for i, record in enumerate(records):
        try:
            rows.append(record_row(record))
        except Exception as exc:  # not a record at all (a missing attribute): reported to the caller
            rejected.append((i, exc))
    if not rejected:
        return encode_rows(rows)
    left_out = {i for i, _ in rejected}
    positions = [i for i in range(len(records)) if i not in left_out]
    batches, more = encode_rows(rows)
    return batches, sorted(rejected + [(positions[i], exc) for i, exc in more], key=lambda item: item[0])


def encode_rows(rows: Sequence[Row]) -> tuple[list[pa.RecordBatch], list[tuple[int, Exception]]]:
    """`record_row` rows as record batches with `SCHEMA`, and the (index, error) of each row left out because a
    scalar has the wrong type (see `encode_records`)."""
    with contextlib.suppress(Exception):  # else some field needs converting or is wrong: go row by row
        return _encode_columns([list(c) for c in zip(*rows, strict=True)]), []
    good: list[Row] = []
    rejected: list[tuple[int, Exception]] = []
    for i, row in enumerate(rows):
        try:
            good.append(_normalize(row))
        except Exception as exc:  # reported to the caller, with the row
            rejected.append((i, exc))
    if not good:
        return [], rejected
    with contextlib.suppress(Exception):  # else a converted value still does not fit (out of range, say)
        return _encode_columns([list(c) for c in zip(*good, strict=True)]), rejected
    kept: list[Row] = []
    left_out = {i for i, _ in rejected}
    for i, row in zip((i for i in range(len(rows)) if i not in left_out), good, strict=True):
        try:
            _encode_columns([[value] for value in row])
        except Exception as exc:  # reported to the caller, with the row
            rejected.append((i, exc))
            continue
        kept.append(row)
    rejected.sort(key=lambda item: item[0])
    return (_encode_columns([list(c) for c in zip(*kept, strict=True)]) if kept else []), rejected


def warm_up() -> None:
    """Do once what the first flush and the first seal would otherwise pay for in the middle of traffic: the
    first `pa.array` from Python values imports pandas (pyarrow looks for it; about 0.25 s of CPU) and the first
    Parquet write sets up its codecs. A replica calls it at start-up, before it freezes its heap."""
    record = RequestRecord("warm-up", 0, "d", "m", 1, "stable", {"x": [1.0]}, [0.0], 0.0, 200, "native", None)
    (batch,), _ = encode_records([record])
    frame(batch)
    table = pa.Table.from_batches([batch])
    pq.write_table(table, pa.BufferOutputStream(), compression="zstd", use_dictionary=_DICTIONARY)


def frame(batch: pa.RecordBatch) -> bytes:
    """One frame (header + Arrow IPC stream) holding `batch`."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, SCHEMA) as writer:
        writer.write_batch(batch)
    body = sink.getvalue()
    data: bytes = body.to_pybytes()
    return _HEADER.pack(_MAGIC, zlib.crc32(data), len(data)) + data


def read_open_batches(path: Path) -> tuple[list[pa.RecordBatch], int]:
    """The record batches of an open segment, and the count of trailing bytes ignored because they do not form a
    complete frame with a valid checksum."""
    data = path.read_bytes()
    buffer = pa.py_buffer(data)
    view = memoryview(data)
    batches: list[pa.RecordBatch] = []
    position, end = 0, len(data)
    while end - position >= _HEADER.size:
        magic, crc, length = _HEADER.unpack_from(data, position)
        start = position + _HEADER.size
        stop = start + length
        if magic != _MAGIC or stop > end or zlib.crc32(view[start:stop]) != crc:
            break
        try:
            read = list(pa.ipc.open_stream(buffer.slice(start, length)))
        except (pa.ArrowException, ValueError):  # pragma: no cover - the checksum matched
            break
        batches.extend(_conform(batch) for batch in read)
        position = stop
    return batches, end - position


def read_open_segment(path: Path) -> tuple[dict[str, list[Any]], int]:
    """The records of an open segment as columns (`SCHEMA` order), and the count of trailing bytes ignored
    because they do not form a complete frame with a valid checksum."""
    batches, torn = read_open_batches(path)
    table = pa.Table.from_batches(batches, schema=SCHEMA)
    return {name: table.column(name).to_pylist() for name in SCHEMA.names}, torn


def write_sealed(columns: dict[str, list[Any]] | pa.Table, path: Path) -> SegmentMeta:
    """Write the records as a Parquet file at `path`, atomically (temporary file, fsync, rename)."""
    table = columns if isinstance(columns, pa.Table) else pa.table(columns, schema=SCHEMA)
    staging = path.with_name(path.name + ".tmp")
    pq.write_table(table, staging, compression="zstd", use_dictionary=_DICTIONARY)
    _fsync_path(staging)
    os.replace(staging, path)
    _fsync_directory(path.parent)
    return _meta(path, table)


def segment_meta(path: Path) -> SegmentMeta:
    """The metadata of a sealed Parquet file already on disk (used to retry a failed publish)."""
    return _meta(path, pq.read_table(path, columns=["deployment", "time_ms"]))


def _meta(path: Path, table: pa.Table) -> SegmentMeta:
    times = pc.min_max(table.column("time_ms"))
    deployments = pc.unique(table.column("deployment")).to_pylist()
    return SegmentMeta(
        name=path.name,
        rows=table.num_rows,
        deployments=tuple(sorted(deployments)),
        min_time_ms=times["min"].as_py() or 0,
        max_time_ms=times["max"].as_py() or 0,
        sha256=_sha256(path),
        size_bytes=path.stat().st_size,
    )


def read_segments(source: Path | str | Iterable[Path | str]) -> pa.Table:
    """Read sealed segments into one table with `SCHEMA`: a directory (its `*.parquet` files, in name order,
    which is per-replica write order), one file, or a list of files."""
    if isinstance(source, str | Path):
        source = Path(source)
        paths = sorted(source.glob("*.parquet")) if source.is_dir() else [source]
    else:
        paths = [Path(p) for p in source]
    tables = [pq.read_table(p, schema=SCHEMA) for p in paths]
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


def claim(path: Path) -> int | None:
    """An open descriptor of `path` locked by this process, or None when another live process holds it or the
    file is gone. Closing the descriptor releases the claim."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    if not _lock(fd) or not _same_file(fd, path):
        os.close(fd)
        return None
    return fd


def _encode_columns(columns: list[list[Any]]) -> list[pa.RecordBatch]:
    """The row fields as columns (`SCHEMA` order) as record batches; raises if a value does not fit."""
    arrays = [pa.array(values, type=kind) for values, kind in zip(columns[:10], _SCALAR_TYPES, strict=True)]
    if any(arrays[i].null_count for i in _NOT_NULL):
        raise TypeError("a required field is None")
    inputs, outputs = _texts(columns[10]), _texts(columns[11])
    if inputs is None or outputs is None:  # too much text for one array: split the batch
        half = len(columns[0]) // 2
        return _encode_columns([c[:half] for c in columns]) + _encode_columns([c[half:] for c in columns])
    given = columns[12]
    if all(text is None for text in given):
        probabilities = pa.nulls(len(given), pa.string())
    else:
        probabilities = pa.array([None if text is None else text.decode() for text in given], type=pa.string())
    return [pa.RecordBatch.from_arrays([*arrays, inputs, outputs, probabilities], schema=SCHEMA)]


def _conform(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch written before the `probabilities` column existed, with that column (null)."""
    if batch.schema.names == SCHEMA.names:
        return batch
    arrays = [
        batch.column(name) if name in batch.schema.names else pa.nulls(batch.num_rows, SCHEMA.field(name).type)
        for name in SCHEMA.names
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


def _texts(encoded: Sequence[bytes]) -> pa.Array | None:
    """JSON texts as one `string` array, built from the bytes without decoding them; None when they do not fit
    one array."""
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    if offsets[-1] > _MAX_TEXT_BYTES:
        if len(encoded) > 1:
            return None
        return pa.array([encoded[0].decode()], type=pa.string())  # pragma: no cover - a 2 GiB request
    return pa.StringArray.from_buffers(
        len(encoded), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))
    )


def _normalize(row: Row) -> Row:
    request_id, time_ms, deployment, model, version, role, protocol, status, latency_ms, sticky_key, *texts = row
    return (
        str(request_id),
        int(time_ms),
        str(deployment),
        str(model),
        int(version),
        str(role),
        str(protocol),
        int(status),
        float(latency_ms),
        None if sticky_key is None else str(sticky_key),
        *texts,
    )


def _dumps(value: object) -> bytes:
    try:
        return orjson.dumps(value, default=_json_default, option=_JSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        # e.g. an integer beyond 64 bits: keep the request, with the value as text
        return orjson.dumps(repr(value))


def _json_default(value: object) -> object:
    """What orjson cannot write itself: numpy arrays of strings or objects (a classifier's labels) as lists,
    anything else as its `str`."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    return str(value)


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (opened.st_dev, opened.st_ino)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    staging = path.with_name(path.name + ".tmp")
    with staging.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(staging, path)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - no flock; one replica per directory on Windows
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
