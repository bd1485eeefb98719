"""A content-addressed (sha256) blob store over fsspec: local files or S3 (through s3fs).

The store mints every key: a blob lives at `<root>/blobs/sha256/<d[:2]>/<d[2:4]>/<digest>`. An upload is
written to `<root>/tmp/<uuid4>` while hashed, and published under its digest only once complete and
verified, so a reader never sees a partial blob. A temporary file left by a crash is removed by
`sweep_temp` once nothing has written to it for `TMP_GRACE_SECONDS`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import unquote, urlparse

import fsspec

from loopml.errors import ArtifactCorrupted, ArtifactNotFound, InvalidPath

__all__ = [
    "CHUNK_SIZE",
    "SWEEP_INTERVAL_SECONDS",
    "TMP_GRACE_SECONDS",
    "ArtifactStore",
    "BlobInfo",
    "open_artifact_store",
]

CHUNK_SIZE = 1 << 20
TMP_GRACE_SECONDS = 6 * 3600
"""A temporary upload file nothing has written to for this long is a crash's leftover. An upload in flight
writes its file at every chunk, so it stays younger than this even when it takes hours."""
SWEEP_INTERVAL_SECONDS = 3600
"""How often (at most) an upload also sweeps the temporary area, for leftovers of other processes."""
logger = logging.getLogger("loopml.artifacts")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its sha256 hex digest and its size in bytes."""

    digest: str
    size: int


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidPath(f"invalid sha256 digest {digest!r}: expected 64 lowercase hexadecimal characters")
    return digest


def _modified_at(entry: dict[str, Any]) -> float | None:
    """The last-write time (epoch seconds) of an fsspec listing entry: `mtime` on disk, `LastModified` on S3."""
    value = entry.get("mtime", entry.get("LastModified"))
    if isinstance(value, int | float):
        return float(value)
    timestamp = getattr(value, "timestamp", None)  # a datetime
    return float(timestamp()) if callable(timestamp) else None


def _chunks(stream: BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    read = getattr(stream, "read", None)
    if read is None:
        yield from stream
        return
    while chunk := read(CHUNK_SIZE):
        yield chunk


class ArtifactStore:
    """Content-addressed blobs under `root` on an fsspec filesystem.

    >>> import tempfile
    >>> store = open_artifact_store(tempfile.mkdtemp())
    >>> info = store.put_bytes(b"hello")
    >>> info.size, store.exists(info.digest), b"".join(store.iter_chunks(info.digest))
    (5, True, b'hello')
    """

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self._next_sweep = 0.0  # time.monotonic() of the next sweep by `put`: the first upload sweeps
        self._sweep_lock = threading.Lock()

    @property
    def _is_local(self) -> bool:
        protocol = self.fs.protocol
        return "file" in (protocol if isinstance(protocol, tuple) else (protocol,))

    def _key(self, digest: str) -> str:
        _check_digest(digest)
        return f"{self.root}/blobs/sha256/{digest[:2]}/{digest[2:4]}/{digest}"

    def put(self, stream: BinaryIO | Iterable[bytes], expected_sha256: str | None = None) -> BlobInfo:
        """Store the bytes of `stream` (a binary file or an iterable of chunks); return digest and size.

        If `expected_sha256` is given and the content does not match it, nothing is stored and
        `ArtifactCorrupted` is raised. If the stream fails midway, nothing is stored and its error
        propagates.
        """
        if expected_sha256 is not None:
            _check_digest(expected_sha256)
        self._sweep_now_and_then()
        tmp = f"{self.root}/tmp/{uuid.uuid4().hex}"  # noqa: S108 (under our root, not /tmp)
        hasher = hashlib.sha256()
        size = 0
        try:
            out = self.fs.open(tmp, "wb")
            try:
                for chunk in _chunks(stream):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            except BaseException:
                with contextlib.suppress(Exception):  # the stream's own error is the one to report
                    out.close()
                raise
            out.close()
            digest = hasher.hexdigest()
            if expected_sha256 is not None and digest != expected_sha256:
                raise ArtifactCorrupted(
                    f"upload does not match its expected sha256 {expected_sha256}: got {digest}; "
                    "nothing was stored, send the content again"
                )
            key = self._key(digest)
            if not self.fs.exists(key):
                self._publish(tmp, key)
                stored = self.fs.size(key)
                if stored != size:
                    raise ArtifactCorrupted(f"blob {digest} was stored with {stored} bytes, expected {size}")
        finally:
            self._discard(tmp)
        return BlobInfo(digest=digest, size=size)

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store `data`."""
        return self.put([data])

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        """Store the content of a local file, streamed."""
        with open(path, "rb") as f:
            return self.put(f)

    def _publish(self, tmp: str, key: str) -> None:
        if self._is_local:
            os.makedirs(os.path.dirname(key), exist_ok=True)
            os.replace(tmp, key)  # atomic: a reader sees no blob or the whole blob
        else:
            self.fs.copy(tmp, key)  # S3 has no rename; an object becomes visible only once complete

    def _discard(self, tmp: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(tmp)

    def sweep_temp(self, grace_seconds: float = TMP_GRACE_SECONDS, now: float | None = None) -> int:
        """Remove the temporary upload files nothing has written to for more than `grace_seconds` (left by
        a crashed server or embedded process); return how many were removed.

        A younger file may belong to an upload in flight, in this process or in another one sharing the
        root, and is never touched. `now` is the wall-clock time to measure ages against (default: now).
        """
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL_SECONDS
        now = time.time() if now is None else now
        tmp_dir = f"{self.root}/tmp"  # noqa: S108 (under our root, not /tmp)
        self.fs.invalidate_cache(tmp_dir)
        try:
            entries = self.fs.ls(tmp_dir, detail=True)
        except FileNotFoundError:
            return 0
        removed = 0
        for entry in entries:
            modified = _modified_at(entry)
            if entry.get("type") != "file" or modified is None or now - modified <= grace_seconds:
                continue
            with contextlib.suppress(FileNotFoundError):  # another process swept it first
                self.fs.rm(entry["name"])
                removed += 1
        if removed:
            logger.info("removed %d temporary upload file(s) left under %s", removed, tmp_dir)
        return removed

    def _sweep_now_and_then(self) -> None:
        with self._sweep_lock:
            if time.monotonic() < self._next_sweep:
                return
            self._next_sweep = time.monotonic() + SWEEP_INTERVAL_SECONDS  # one sweeper at a time
        try:
            self.sweep_temp()
        except Exception:  # an upload must not fail because leftovers could not be removed
            logger.warning("could not sweep temporary upload files under %s/tmp", self.root, exc_info=True)

    def exists(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""
        return bool(self.fs.exists(self._key(digest)))

    def size(self, digest: str) -> int:
        """The size in bytes of a stored blob."""
        key = self._key(digest)
        try:
            return int(self.fs.size(key))
        except FileNotFoundError:
            raise self._not_found(digest) from None

    def open(self, digest: str) -> BinaryIO:
        """A binary file object streaming the blob; close it (or use `with`)."""
        key = self._key(digest)
        try:
            return cast("BinaryIO", self.fs.open(key, "rb"))
        except FileNotFoundError:
            raise self._not_found(digest) from None

    def iter_chunks(self, digest: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The blob's content in chunks of at most `chunk_size` bytes."""
        with self.open(digest) as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def get_file(self, digest: str, dest_path: str | os.PathLike[str], verify: bool = True) -> Path:
        """Download a blob to `dest_path`, replacing it only once complete (and verified); return it.

        Raises `ArtifactCorrupted` if `verify` and the stored content does not hash to `digest`.
        """
        dest = Path(dest_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        hasher = hashlib.sha256()
        try:
            with part.open("wb") as out:
                for chunk in self.iter_chunks(digest):
                    hasher.update(chunk)
                    out.write(chunk)
            if verify and hasher.hexdigest() != digest:
                raise ArtifactCorrupted(
                    f"blob {digest} is corrupted in the artifact store: its content hashes to {hasher.hexdigest()}"
                )
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)
        return dest

    def delete(self, digest: str) -> None:
        """Remove a blob; `ArtifactNotFound` if it is not stored."""
        key = self._key(digest)
        if not self.fs.exists(key):
            raise self._not_found(digest)
        self.fs.rm(key)

    @staticmethod
    def _not_found(digest: str) -> ArtifactNotFound:
        return ArtifactNotFound(f"no artifact blob with sha256 {digest}")


def open_artifact_store(root_url: str, s3_endpoint_url: str | None = None) -> ArtifactStore:
    """An `ArtifactStore` for `file:///abs/dir`, a plain local path, or `s3://bucket/prefix`.

    `s3_endpoint_url` points s3fs at an S3-compatible service (MinIO, Ceph, a test server).
    """
    parsed = urlparse(root_url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise InvalidPath(f"invalid artifact root {root_url!r}: expected s3://bucket[/prefix]")
        options: dict[str, Any] = {}
        if s3_endpoint_url:
            options["client_kwargs"] = {"endpoint_url": s3_endpoint_url}
        fs = fsspec.filesystem("s3", **options)
        return ArtifactStore(fs, f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/"))
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise InvalidPath(f"invalid artifact root {root_url!r}: file:// URLs must name a local path")
        path = unquote(parsed.path)
    elif "://" in root_url:
        raise InvalidPath(
            f"unsupported artifact root {root_url!r}: use file:///abs/dir, a local path or s3://bucket/prefix"
        )
    else:
        path = root_url
    fs = fsspec.filesystem("file", auto_mkdir=True)
    return ArtifactStore(fs, os.path.abspath(path))
