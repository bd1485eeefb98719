"""A metric's whole history as three columns, and its binary wire form (`GET /runs/{id}/metric-series/{key}`).

The body, all integers little-endian:

    offset  size     field
    0       4        magic b"LMS1"
    4       4        uint32: n, the length of the key in UTF-8 bytes
    8       8        uint64: count, the number of points
    16      n        the key, UTF-8
    16+n    0..7     zero bytes, so the columns start at a multiple of 8
    ...     8*count  int64 steps
    ...     8*count  int64 timestamps (ms since the Unix epoch)
    ...     8*count  float64 values (IEEE 754; NaN and infinities as they are)

Points are in the order of the JSON history: by step, then timestamp, then the order they were logged in.
A reader can map each column without copying (`numpy.frombuffer(body, "<i8", count, offset)`).
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass

__all__ = ["MEDIA_TYPE", "SERIES_MAGIC", "MetricSeries", "decode_series", "encode_series"]

SERIES_MAGIC = b"LMS1"
MEDIA_TYPE = "application/vnd.loopml.metric-series"
_HEADER = struct.Struct("<4sIQ")
_LITTLE = sys.byteorder == "little"


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """Every point of one metric of a run as columns: `steps` and `timestamps` are `array('q')`, `values`
    `array('d')`. Each supports the buffer protocol, so `numpy.asarray(series.values)` shares its memory."""

    key: str
    steps: array[int]
    timestamps: array[int]
    values: array[float]

    def __post_init__(self) -> None:
        if not len(self.steps) == len(self.timestamps) == len(self.values):
            raise ValueError("a metric series needs columns of one length")

    def __len__(self) -> int:
        return len(self.steps)


def _padding(key_length: int) -> int:
    return -(_HEADER.size + key_length) % 8


def _little_endian(column: array[int] | array[float]) -> bytes:
    if _LITTLE:
        return column.tobytes()
    swapped = array(column.typecode, column)
    swapped.byteswap()
    return swapped.tobytes()


def encode_series(series: MetricSeries) -> bytes:
    """The binary body of `series` (see the module docstring)."""
    key = series.key.encode()
    header = _HEADER.pack(SERIES_MAGIC, len(key), len(series)) + key + bytes(_padding(len(key)))
    columns = (_little_endian(series.steps), _little_endian(series.timestamps), _little_endian(series.values))
    return b"".join((header, *columns))


def decode_series(body: bytes) -> MetricSeries:
    """A `MetricSeries` from its binary body; `ValueError` naming what is wrong if the body is not one."""
    if len(body) < _HEADER.size:
        raise ValueError(f"a metric series body starts with a {_HEADER.size}-byte header; got {len(body)} bytes")
    magic, key_length, count = _HEADER.unpack_from(body)
    if magic != SERIES_MAGIC:
        raise ValueError(f"not a metric series body: it starts with {magic!r}, not {SERIES_MAGIC!r}")
    start = _HEADER.size + key_length + _padding(key_length)
    if len(body) != start + 24 * count:
        raise ValueError(
            f"a metric series body of {count} points and a {key_length}-byte key has {start + 24 * count} bytes, "
            f"not {len(body)}"
        )
    key = bytes(body[_HEADER.size : _HEADER.size + key_length]).decode()
    view = memoryview(body)
    columns: list[array[int] | array[float]] = []
    for index, typecode in enumerate("qqd"):
        column = array(typecode)
        column.frombytes(view[start + 8 * count * index : start + 8 * count * (index + 1)])
        if not _LITTLE:
            column.byteswap()
        columns.append(column)
    steps, timestamps, values = columns
    return MetricSeries(key, steps, timestamps, values)  # type: ignore[arg-type]
