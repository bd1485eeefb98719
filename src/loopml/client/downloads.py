"""Writing a streamed download to disk, published only if its sha256 matches (both backends use it)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from loopml.errors import ArtifactCorrupted


def write_verified(chunks: Iterable[bytes], digest: str, dest: Path) -> Path:
    """Write streamed `chunks` to `dest` through a temporary file, publishing only if the sha256 matches."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    hasher = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for chunk in chunks:
                hasher.update(chunk)
                out.write(chunk)
        if hasher.hexdigest() != digest:
            raise ArtifactCorrupted(
                f"downloaded content of {dest.name} has sha256 {hasher.hexdigest()}, expected {digest}"
            )
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest
