"""The content digest of a table: what names a dataset version wherever the data is logged or read again."""

from __future__ import annotations

import hashlib

import pandas as pd


def content_digest(frame: pd.DataFrame) -> str:
    """sha256 over column names, dtypes and every value (not the index)."""
    hasher = hashlib.sha256()
    for column, dtype in frame.dtypes.items():
        hasher.update(f"{column}\x00{dtype}\x00".encode())
    hasher.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return hasher.hexdigest()
