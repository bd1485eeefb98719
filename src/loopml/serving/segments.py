"""Request-log segments on disk: the open (append-only) frame format, sealed Parquet files, publishers.

An open segment, `segment-<replica>-<seq>.open`, is a sequence of frames, one per request record:

    header (16 bytes, big-endian): crc32(body), len(meta), len(inputs), len(outputs)
    body: meta (orjson array of the scalar fields) + inputs (orjson object) + outputs (orjson array)

A reader stops at the first frame that is incomplete or fails its checksum (a write torn by a crash) and
reports how many bytes it ignored. Sealing turns the frames into one Parquet file with `SCHEMA` (one row per
request; `inputs` and `outputs` stay JSON text, so any model's columns fit one fixed schema) and a
`SegmentMeta` (rows, deployments, time range, sha256) that a `SegmentPublisher` ships onwards.

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

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.serving.records import RequestRecord

__all__ = [
    "SCHEMA",
    "LocalSegmentPublisher",
    "OpenSegment",
    "SegmentMeta",
    "SegmentPublisher",
    "claim",
    "encode_record",
    "read_open_segment",
    "read_segments",
    "segment_meta",
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
    ]
)
_SCALARS = SCHEMA.names[:10]
_HEADER = struct.Struct(">IIII")
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


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

    def write(self, frames: Sequence[bytes]) -> None:
        """Append the frames with one write and fsync them; on failure the file is cut back to its last
        good size (so no torn frame sits in front of later ones) and the error is raised."""
        data = memoryview(b"".join(frames))
        try:
            while data:
                data = data[os.write(self.fd, data) :]
            os.fsync(self.fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)
            raise
        self.size += sum(len(f) for f in frames)
        self.rows += len(frames)

    def close(self) -> None:
        """Release the file (and its lock). Call after it has been sealed and unlinked, or to abandon it."""
        with contextlib.suppress(OSError):
            os.close(self.fd)


def encode_record(record: RequestRecord) -> bytes:
    """One frame. Values JSON cannot hold (datetimes, Decimals, objects) are written as their `str`."""
    meta = orjson.dumps(
        (
            str(record.request_id),
            int(record.time_ms),
            str(record.deployment),
            str(record.model),
            int(record.version),
            str(record.role),
            str(record.protocol),
            int(record.status),
            float(record.latency_ms),
            None if record.sticky_key is None else str(record.sticky_key),
        )
    )
    inputs = _dumps(record.inputs)
    outputs = _dumps(record.outputs)
    body = meta + inputs + outputs
    return _HEADER.pack(zlib.crc32(body), len(meta), len(inputs), len(outputs)) + body


def read_open_segment(path: Path) -> tuple[dict[str, list[Any]], int]:
    """The records of an open segment as columns (`SCHEMA` order), and the count of trailing bytes ignored
    because they do not form a complete frame with a valid checksum."""
    data = path.read_bytes()
    metas: list[bytes] = []
    inputs: list[str] = []
    outputs: list[str] = []
    position, end = 0, len(data)
    while end - position >= _HEADER.size:
        crc, meta_len, inputs_len, outputs_len = _HEADER.unpack_from(data, position)
        start = position + _HEADER.size
        split_inputs = start + meta_len
        split_outputs = split_inputs + inputs_len
        stop = split_outputs + outputs_len
        if stop > end or zlib.crc32(data[start:stop]) != crc:
            break
        metas.append(data[start:split_inputs])
        inputs.append(data[split_inputs:split_outputs].decode())
        outputs.append(data[split_outputs:stop].decode())
        position = stop
    rows = orjson.loads(b"[" + b",".join(metas) + b"]")  # one parse for the whole segment
    scalars = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in _SCALARS]
    columns = dict(zip(_SCALARS, scalars, strict=True))
    columns["inputs"], columns["outputs"] = inputs, outputs
    return columns, end - position


def write_sealed(columns: dict[str, list[Any]], path: Path) -> SegmentMeta:
    """Write the columns as a Parquet file at `path`, atomically (temporary file, fsync, rename)."""
    table = pa.table(columns, schema=SCHEMA)
    staging = path.with_name(path.name + ".tmp")
    pq.write_table(table, staging, compression="zstd")
    _fsync_path(staging)
    os.replace(staging, path)
    _fsync_directory(path.parent)
    times = columns["time_ms"]
    return SegmentMeta(
        name=path.name,
        rows=table.num_rows,
        deployments=tuple(sorted(set(columns["deployment"]))),
        min_time_ms=min(times, default=0),
        max_time_ms=max(times, default=0),
        sha256=_sha256(path),
        size_bytes=path.stat().st_size,
    )


def segment_meta(path: Path) -> SegmentMeta:
    """The metadata of a sealed Parquet file already on disk (used to retry a failed publish)."""
    table = pq.read_table(path, columns=["deployment", "time_ms"])
    times = table.column("time_ms").to_pylist()
    return SegmentMeta(
        name=path.name,
        rows=table.num_rows,
        deployments=tuple(sorted(set(table.column("deployment").to_pylist()))),
        min_time_ms=min(times, default=0),
        max_time_ms=max(times, default=0),
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


def _dumps(value: object) -> bytes:
    try:
        return orjson.dumps(value, default=str, option=_JSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        # e.g. an integer beyond 64 bits: keep the request, with the value as text
        return orjson.dumps(repr(value))


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
