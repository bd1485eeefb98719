"""Batch scoring: a Parquet or CSV file in, a Parquet file with every input column plus `prediction` out.

The file is streamed in chunks of `chunk_rows`, so memory follows the chunk size, not the file size; each
chunk goes through `LoadedModel.predict` (the signature is enforced, as for an online request). The output is
written to a temporary file next to `destination` and renamed into place at the end: a reader sees the whole
result or nothing, and a failure leaves no partial file behind.

    model = client.models.load("bike-demand@champion")
    score_file(model, Path("hours.parquet"), Path("scored.parquet"), chunk_rows=100_000)
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from loopml.errors import InvalidInput, LoopmlError, UserCodeError

if TYPE_CHECKING:
    from loopml.registry import LoadedModel, Signature

__all__ = ["PREDICTION_COLUMN", "BatchResult", "count_rows", "default_workers", "score_file"]

PREDICTION_COLUMN = "prediction"
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)
_CSV_BLOCK_BYTES = 8 << 20
_ARROW_TYPES: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    **{name: pa.from_numpy_dtype(np.dtype(name)) for name in ("int8", "int16", "int32", "int64")},
    **{name: pa.from_numpy_dtype(np.dtype(name)) for name in ("uint8", "uint16", "uint32", "uint64")},
    "float32": pa.float32(),
    "float64": pa.float64(),
    "string": pa.string(),
}


@dataclass(frozen=True)
class BatchResult:
    """What `score_file` wrote: rows scored, chunks, wall time in seconds, and the output path."""

    rows: int
    chunks: int
    seconds: float
    destination: Path


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def count_rows(source: Path) -> int | None:
    """Rows in `source` when known without reading it (Parquet metadata); None for CSV."""
    if source.suffix.lower() not in PARQUET_SUFFIXES:
        return None
    try:
        return int(pq.read_metadata(source).num_rows)
    except (pa.ArrowInvalid, OSError):
        return None  # not readable: scoring says why


def score_file(
    model: LoadedModel,
    source: Path,
    destination: Path,
    chunk_rows: int = 100_000,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> BatchResult:
    """Score every row of `source` (`.parquet`/`.pq` or `.csv`) into the Parquet file `destination`.

    `progress` is called with the number of rows of each chunk once it is written. A chunk the model
    rejects (a missing column, a wrong dtype, nulls where the signature forbids them) raises `InvalidInput`
    naming the chunk and its row range; `destination` is then left as it was. `workers` chunks are predicted
    at once, each on one OpenMP thread (default: one per CPU, at most 8); rows keep their order.
    """
    if chunk_rows < 1:
        raise InvalidInput(f"chunk_rows must be at least 1, got {chunk_rows}")
    if workers is not None and workers < 1:
        raise InvalidInput(f"workers must be at least 1, got {workers}")
    source, destination = Path(source), Path(destination)
    if not source.is_file():
        raise InvalidInput(f"{source}: no such input file")
    if destination.exists() and (destination.is_dir() or destination.resolve() == source.resolve()):
        raise InvalidInput(f"{destination}: the output must be a new file, not a directory or the input")
    started = time.perf_counter()
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp")
    os.close(handle)
    scratch = Path(scratch_name)
    try:
        rows, chunks = _score(model, source, scratch, chunk_rows, workers or default_workers(), progress)
        os.replace(scratch, destination)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    return BatchResult(rows, chunks, time.perf_counter() - started, destination)


def _score(
    model: LoadedModel,
    source: Path,
    scratch: Path,
    chunk_rows: int,
    workers: int,
    progress: Callable[[int], None] | None,
) -> tuple[int, int]:
    batches, schema, reader = _open(source, model.signature, chunk_rows)
    output = _Output(scratch, progress)
    pending: deque[tuple[pa.Table, str, Future[pa.Array]]] = deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="loopml-batch", initializer=_one_openmp_thread)
    try:
        if PREDICTION_COLUMN in schema.names:
            raise InvalidInput(f"{source}: the input already has a {PREDICTION_COLUMN!r} column; rename or drop it")
        offset = 0
        for number, chunk in enumerate(_rechunk(batches, chunk_rows, source), start=1):
            where = f"{source}: chunk {number} (rows {offset:,}-{offset + chunk.num_rows - 1:,})"
            offset += chunk.num_rows
            pending.append((chunk, where, pool.submit(_predictions, model, chunk, where)))
            while len(pending) > workers:  # in order: chunk n is written before chunk n + 1
                output.write(*_done(pending.popleft()))
        while pending:
            output.write(*_done(pending.popleft()))
        output.finish(schema.append(pa.field(PREDICTION_COLUMN, _output_type(model))))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        reader.close()
        output.close()
    return output.rows, output.chunks


def _done(item: tuple[pa.Table, str, Future[pa.Array]]) -> tuple[pa.Table, pa.Array, str]:
    chunk, where, future = item
    return chunk, future.result(), where


class _Output:
    """The Parquet file being written: its schema is the first chunk's; later chunks are cast to it."""

    def __init__(self, path: Path, progress: Callable[[int], None] | None) -> None:
        self.path = path
        self.progress = progress
        self.writer: pq.ParquetWriter | None = None
        self.rows = self.chunks = 0

    def write(self, chunk: pa.Table, predictions: pa.Array, where: str) -> None:
        scored = chunk.append_column(PREDICTION_COLUMN, predictions)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, scored.schema)
        elif scored.schema != self.writer.schema:
            scored = _conform(scored, self.writer.schema, where)
        self.writer.write_table(scored)
        self.rows += chunk.num_rows
        self.chunks += 1
        if self.progress is not None:
            self.progress(chunk.num_rows)

    def finish(self, empty_schema: pa.Schema) -> None:
        """An input with no rows still gives a file: no rows, the input's columns and `prediction`."""
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, empty_schema)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _one_openmp_thread() -> None:
    """Each worker predicts its chunk with one OpenMP thread; chunks run in parallel instead. A model's own
    OpenMP team on a busy machine waits at a barrier per tree (HistGradientBoosting: 100 per chunk)."""
    try:
        threadpoolctl: Any = importlib.import_module("threadpoolctl")
    except ImportError:  # scikit-learn depends on it; without it the libraries keep their defaults
        return
    threadpoolctl.threadpool_limits(limits=1, user_api="openmp")


def _open(
    source: Path, signature: Signature | None, chunk_rows: int
) -> tuple[Iterable[pa.RecordBatch], pa.Schema, Any]:
    """The source's batches, its schema, and the reader to close when done."""
    suffix = source.suffix.lower()
    try:
        if suffix in PARQUET_SUFFIXES:
            parquet = pq.ParquetFile(source)
            return parquet.iter_batches(batch_size=chunk_rows), parquet.schema_arrow, parquet
        if suffix in CSV_SUFFIXES:
            # The signature's columns are read as its dtypes: type inference on the first block alone would
            # fail on a later block where an integer-looking column first holds a fraction.
            types = (
                {c.name: _ARROW_TYPES[c.dtype] for c in signature.inputs if c.dtype in _ARROW_TYPES}
                if signature
                else {}
            )
            reader = pa_csv.open_csv(
                source,
                read_options=pa_csv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
                convert_options=pa_csv.ConvertOptions(column_types=types),
            )
            return reader, reader.schema, reader
    except (pa.ArrowInvalid, OSError) as exc:
        raise _read_error(source, exc, 0) from None
    raise InvalidInput(f"{source}: batch scoring reads .parquet, .pq or .csv files, not {suffix or 'no suffix'}")


def _rechunk(batches: Iterable[pa.RecordBatch], chunk_rows: int, source: Path) -> Iterator[pa.Table]:
    """Tables of exactly `chunk_rows` rows (the last may be shorter), whatever size the reader's batches are."""
    pending: list[pa.RecordBatch] = []
    held = emitted = 0
    iterator = iter(batches)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            raise _read_error(source, exc, emitted + held) from None
        pending.append(batch)
        held += batch.num_rows
        while held >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_rows)
            emitted += chunk_rows
            pending = table.slice(chunk_rows).to_batches()
            held -= chunk_rows
    if held:
        yield pa.Table.from_batches(pending)


def _read_error(source: Path, exc: Exception, first_row: int) -> InvalidInput:
    """The reader's complaint, with the row it was reading from and the CSV column by name, not by number."""
    message = str(exc).strip()
    found = re.search(r"In CSV column #(\d+)", message)
    if found is not None:
        with contextlib.suppress(pa.ArrowInvalid, OSError, IndexError):  # keep the reader's own wording then
            header = pa_csv.open_csv(source, read_options=pa_csv.ReadOptions(block_size=1 << 16)).schema.names
            message = message.replace(found.group(0), f"column {header[int(found.group(1))]!r}")
    return InvalidInput(f"{source}: cannot read the rows from row {first_row:,} on: {message}")


def _predictions(model: LoadedModel, chunk: pa.Table, where: str) -> pa.Array:
    frame = chunk.to_pandas()
    try:
        predicted = np.asarray(model.predict(frame))
    except LoopmlError as error:
        raise InvalidInput(f"{where}: {error.message}") from None
    except Exception as exc:  # the model's own code failed on these rows
        raise UserCodeError(f"{where}: the model raised {type(exc).__name__}: {exc}") from exc
    if predicted.shape[0] != chunk.num_rows:
        raise UserCodeError(f"{where}: the model returned {predicted.shape[0]} predictions for {chunk.num_rows} rows")
    if predicted.ndim == 1:
        return pa.array(predicted)
    width = int(np.prod(predicted.shape[1:]))
    return pa.FixedSizeListArray.from_arrays(pa.array(predicted.reshape(-1)), width)


def _conform(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise InvalidInput(f"{where}: columns differ in type from the first chunk: {exc}") from None


def _output_type(model: LoadedModel) -> Any:
    signature = model.signature
    if signature is None or signature.outputs is None:
        return pa.float64()
    try:
        return pa.from_numpy_dtype(np.dtype(signature.outputs.dtype))
    except TypeError:
        return pa.string()
