"""The S3 backend as S3 itself sees it: checked with boto3, independently of s3fs (moto server).

The shared contract (round trip, dedupe, cut-off upload, hash mismatch...) runs on S3 too, through the
`store` fixture in test_store.py; these tests look at the bucket from the outside.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from loopml.artifacts import ArtifactStore, open_artifact_store
from loopml.errors import ArtifactCorrupted

boto3 = pytest.importorskip("boto3")


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture
def prefix() -> str:
    return f"team/{uuid.uuid4().hex}"


@pytest.fixture
def store(s3_endpoint: str, s3_bucket: str, prefix: str) -> ArtifactStore:
    return open_artifact_store(f"s3://{s3_bucket}/{prefix}/", s3_endpoint_url=s3_endpoint)


def objects(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}


def blob_key(prefix: str, digest: str) -> str:
    return f"{prefix}/blobs/sha256/{digest[:2]}/{digest[2:4]}/{digest}"


def test_blob_lands_at_the_minted_key_only(store: ArtifactStore, s3: Any, s3_bucket: str, prefix: str) -> None:
    data = b"model bytes" * 1000
    digest = hashlib.sha256(data).hexdigest()

    assert store.put([data]).digest == digest
    assert store.put([data[:5], data[5:]]).digest == digest

    assert objects(s3, s3_bucket, prefix) == {blob_key(prefix, digest): data}


def test_failed_uploads_leave_no_object_and_no_multipart_upload(
    store: ArtifactStore, s3: Any, s3_bucket: str, prefix: str
) -> None:
    def cut_off() -> Iterator[bytes]:
        yield b"partial" * 1000
        raise TimeoutError("upload interrupted")

    with pytest.raises(TimeoutError):
        store.put(cut_off())
    with pytest.raises(ArtifactCorrupted):
        store.put([b"tampered"], expected_sha256=hashlib.sha256(b"original").hexdigest())

    assert objects(s3, s3_bucket, prefix) == {}
    assert s3.list_multipart_uploads(Bucket=s3_bucket, Prefix=prefix).get("Uploads", []) == []


def test_object_written_by_another_client_is_read_back(
    store: ArtifactStore, s3: Any, s3_bucket: str, prefix: str
) -> None:
    data = b"written by another replica"
    digest = hashlib.sha256(data).hexdigest()
    s3.put_object(Bucket=s3_bucket, Key=blob_key(prefix, digest), Body=data)

    assert store.exists(digest)
    assert b"".join(store.iter_chunks(digest)) == data
