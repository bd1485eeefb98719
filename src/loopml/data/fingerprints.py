"""Dataset fingerprints: content hash, schema and row count, computed where the data is (never uploaded)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from loopml.domain import DatasetInput
from loopml.errors import InvalidInput


def fingerprint(data: Any, name: str, role: str, source: str | None = None) -> DatasetInput:
    """A DatasetInput for a pandas DataFrame, a numpy array, a pyarrow Table or a CSV/Parquet file path.

    The digest covers column names, dtypes and every value (not the index), so the same data logged
    twice, from any process, is one dataset version.
    """
    import pandas as pd

    if isinstance(data, str | os.PathLike):
        path = Path(data)
        if not path.is_file():
            raise InvalidInput(f"dataset file {str(path)!r} does not exist")
        frame = pd.read_parquet(path) if path.suffix in (".parquet", ".pq") else pd.read_csv(path)
        source = source or str(path.resolve())
    elif isinstance(data, pd.DataFrame):
        frame = data
    elif type(data).__module__.startswith("pyarrow"):
        frame = data.to_pandas()
    elif type(data).__module__.startswith("numpy"):
        frame = pd.DataFrame(data).rename(columns=str)
    else:
        raise InvalidInput(
            f"log_dataset takes a pandas DataFrame, numpy array, pyarrow Table or a CSV/Parquet path, "
            f"not {type(data).__name__}"
        )
    schema = tuple((str(column), str(dtype)) for column, dtype in frame.dtypes.items())
    hasher = hashlib.sha256()
    for column, dtype in schema:
        hasher.update(f"{column}\x00{dtype}\x00".encode())
    hasher.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return DatasetInput(
        name=name,
        digest=hasher.hexdigest(),
        schema=schema,
        rows=len(frame),
        source=source or "memory",
        role=role,
    )
