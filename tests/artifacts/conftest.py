"""Artifact store fixtures: one `store` per backend (local files, and S3 through s3fs against moto)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.artifacts import ArtifactStore, open_artifact_store

BUCKET = "loopml-test"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free local port, with an empty bucket, for the whole session."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.delenv("AWS_PROFILE", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """The bucket created on the moto server."""
    return BUCKET


@pytest.fixture
def s3_store(s3_endpoint: str) -> ArtifactStore:
    """A store under a fresh prefix of the test bucket, so tests never see each other's blobs."""
    return open_artifact_store(f"s3://{BUCKET}/{uuid.uuid4().hex}", s3_endpoint_url=s3_endpoint)


@pytest.fixture
def file_store(tmp_path: Path) -> ArtifactStore:
    return open_artifact_store((tmp_path / "artifacts").as_uri())


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest) -> ArtifactStore:
    """The same scenario on every backend."""
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]
