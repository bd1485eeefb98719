"""Where evaluation rows come from: a DataFrame, a Parquet or CSV file, or a logged dataset whose file is
still where it was logged from (checked against its digest)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from loopml.data import content_digest
from loopml.errors import InvalidInput

__all__ = ["DATASET_PREFIX", "read_rows"]

DATASET_PREFIX = "dataset:"
"""`dataset:<digest>` names a logged dataset (`lm.log_dataset`) as evaluation data."""


def read_file(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InvalidInput(f"evaluation data {str(path)!r}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"evaluation data {str(path)!r} cannot be read: {exc}") from None
    raise InvalidInput(f"evaluation data {str(path)!r}: give a .parquet, .pq or .csv file")


def read_rows(data: Any) -> tuple[pd.DataFrame, str]:
    """The rows of `data` (a pandas DataFrame or a Parquet/CSV path) and a description of where they came from."""
    if isinstance(data, pd.DataFrame):
        return data, "memory"
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        return read_file(path), str(path.resolve())
    raise InvalidInput(
        f"evaluation data must be a pandas DataFrame, a .parquet/.csv path or {DATASET_PREFIX}<digest>, "
        f"not {type(data).__name__}"
    )


def digest_of(frame: pd.DataFrame) -> str:
    return content_digest(frame)
