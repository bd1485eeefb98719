"""The artifact store's contract, run on every backend (see conftest.py)."""

from __future__ import annotations

import hashlib
import io
import os
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.artifacts import ArtifactStore, BlobInfo, open_artifact_store
from loopml.artifacts.store import TMP_GRACE_SECONDS
from loopml.errors import ArtifactCorrupted, ArtifactNotFound, InvalidPath


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_keys(store: ArtifactStore) -> list[str]:
    """Every object under the store's root: blobs and leftovers alike."""
    store.fs.invalidate_cache()
    if not store.fs.exists(store.root):
        return []
    return sorted(store.fs.find(store.root))


def test_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # several chunks and a ragged tail

    info = store.put(io.BytesIO(data))

    assert info == BlobInfo(digest=sha(data), size=len(data))
    assert store.exists(info.digest)
    assert store.size(info.digest) == len(data)
    with store.open(info.digest) as f:
        assert f.read() == data
    assert b"".join(store.iter_chunks(info.digest, chunk_size=1000)) == data
    dest = store.get_file(info.digest, tmp_path / "out" / "model.bin")
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["model.bin"]  # no .part file left behind
    d = info.digest
    assert stored_keys(store) == [f"{store.root}/blobs/sha256/{d[:2]}/{d[2:4]}/{d}"]  # no tmp/ leftovers


def test_put_file_and_bytes_agree(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(b"weights" * 1000)

    assert store.put_file(source) == store.put_bytes(b"weights" * 1000)


def test_same_content_is_stored_once(store: ArtifactStore) -> None:
    first = store.put_bytes(b"same")
    second = store.put([b"sa", b"me"], expected_sha256=sha(b"same"))

    assert first == second
    assert len(stored_keys(store)) == 1


def test_empty_blob(store: ArtifactStore) -> None:
    info = store.put_bytes(b"")

    assert info == BlobInfo(sha(b""), 0)
    assert b"".join(store.iter_chunks(info.digest)) == b""


def test_expected_hash_mismatch_stores_nothing(store: ArtifactStore) -> None:
    store.put_bytes(b"already here")

    with pytest.raises(ArtifactCorrupted, match=sha(b"promised")):
        store.put([b"delivered"], expected_sha256=sha(b"promised"))

    assert not store.exists(sha(b"delivered"))
    assert not store.exists(sha(b"promised"))
    assert stored_keys(store) == [store._key(sha(b"already here"))]


def test_cut_off_upload_leaves_nothing(store: ArtifactStore) -> None:
    def cut_off() -> Iterator[bytes]:
        yield b"x" * (1 << 20)
        yield b"y" * 1000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.put(cut_off())

    assert stored_keys(store) == []


def test_get_file_detects_a_corrupted_blob(store: ArtifactStore, tmp_path: Path) -> None:
    info = store.put_bytes(b"the real model")
    store.fs.pipe_file(store._key(info.digest), b"the evil model")  # bit rot, or tampering
    store.fs.invalidate_cache()
    dest = tmp_path / "downloads" / "model.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"previous good copy")

    with pytest.raises(ArtifactCorrupted, match=info.digest):
        store.get_file(info.digest, dest)

    assert dest.read_bytes() == b"previous good copy"  # untouched
    assert [p.name for p in dest.parent.iterdir()] == ["model.bin"]
    store.get_file(info.digest, dest, verify=False)
    assert dest.read_bytes() == b"the evil model"


def test_missing_blob(store: ArtifactStore, tmp_path: Path) -> None:
    missing = sha(b"never stored")

    assert not store.exists(missing)
    with pytest.raises(ArtifactNotFound):
        store.open(missing)
    with pytest.raises(ArtifactNotFound):
        store.size(missing)
    with pytest.raises(ArtifactNotFound):
        store.get_file(missing, tmp_path / "x")
    with pytest.raises(ArtifactNotFound):
        store.delete(missing)
    assert not (tmp_path / "x").exists()


def test_delete(store: ArtifactStore) -> None:
    info = store.put_bytes(b"gone soon")

    store.delete(info.digest)

    assert not store.exists(info.digest)


@pytest.mark.parametrize("digest", ["", "abc", "A" * 64, "g" * 64, "../" + "a" * 61, "a" * 63 + "\n", "a" * 65])
def test_malformed_digest_is_rejected(store: ArtifactStore, digest: str) -> None:
    with pytest.raises(InvalidPath, match="64 lowercase hexadecimal"):
        store.exists(digest)
    with pytest.raises(InvalidPath):
        store.put([b"x"], expected_sha256=digest)
    assert stored_keys(store) == []


def test_large_put_is_streamed(file_store: ArtifactStore) -> None:
    chunk = os.urandom(1 << 20)
    count = 20
    expected = hashlib.sha256()
    for _ in range(count):
        expected.update(chunk)

    tracemalloc.start()
    try:
        info = file_store.put(chunk for _ in range(count))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert info == BlobInfo(expected.hexdigest(), count * len(chunk))
    assert peak < 5 * len(chunk), f"put held {peak} bytes at once for a {count} MiB stream"


@pytest.mark.parametrize("as_url", [True, False])
def test_local_root_as_url_or_path(tmp_path: Path, as_url: bool) -> None:
    root = tmp_path / "root dir"
    store = open_artifact_store(root.as_uri() if as_url else str(root))

    info = store.put_bytes(b"hi")

    assert (root / "blobs" / "sha256" / info.digest[:2] / info.digest[2:4] / info.digest).read_bytes() == b"hi"


@pytest.mark.parametrize("url", ["http://example.com/x", "gs://bucket", "file://otherhost/x", "s3://"])
def test_unsupported_root_is_rejected(url: str) -> None:
    with pytest.raises(InvalidPath, match="artifact root"):
        open_artifact_store(url)


def leave_temp_file(store: ArtifactStore, name: str, age_seconds: float = 0) -> str:
    """A temporary upload file as a crashed process leaves it, last written `age_seconds` ago (on disk)."""
    key = f"{store.root}/tmp/{name}"
    store.fs.pipe_file(key, b"half an upload")
    if age_seconds:
        written = time.time() - age_seconds
        os.utime(key, (written, written))
    store.fs.invalidate_cache()
    return key


def test_sweep_removes_temp_files_past_the_grace_period_only(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"published")
    leftovers = [leave_temp_file(store, "crashed-1"), leave_temp_file(store, "crashed-2")]

    assert store.sweep_temp() == 0  # just written: could be uploads in flight
    assert stored_keys(store) == sorted([store._key(blob.digest), *leftovers])

    later = time.time() + TMP_GRACE_SECONDS + 60
    assert store.sweep_temp(now=later) == 2
    assert stored_keys(store) == [store._key(blob.digest)]  # blobs are never swept
    assert store.sweep_temp(now=later) == 0


def test_an_upload_in_flight_survives_a_sweep(store: ArtifactStore) -> None:
    swept: list[int] = []

    def slow_upload() -> Iterator[bytes]:
        yield b"x" * (1 << 20)
        swept.append(store.sweep_temp())  # another process sweeps while this upload is half written
        yield b"y" * 1000

    info = store.put(slow_upload())

    assert swept == [0]
    assert info == BlobInfo(sha(b"x" * (1 << 20) + b"y" * 1000), (1 << 20) + 1000)
    assert store.exists(info.digest)


def test_the_first_upload_sweeps_leftovers_of_a_crash(file_store: ArtifactStore) -> None:
    stale = leave_temp_file(file_store, "crashed", age_seconds=2 * 24 * 3600)
    in_flight = leave_temp_file(file_store, "in-flight", age_seconds=60)

    info = file_store.put_bytes(b"next upload")

    assert stored_keys(file_store) == sorted([file_store._key(info.digest), in_flight])
    assert not os.path.exists(stale)


def test_docstring_examples_run() -> None:
    import doctest

    from loopml.artifacts import paths, store

    for module in (paths, store):
        assert doctest.testmod(module).failed == 0
