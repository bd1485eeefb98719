"""Content-addressed (sha256) blob storage over fsspec, and the sanitizer for user-given artifact paths.

Owns where artifact bytes live (`file://` or `s3://`); it must not import `loopml.store`, any service
package or `loopml.server`: only `loopml.errors`, `loopml.domain`, the stdlib and fsspec.
"""

from __future__ import annotations

from loopml.artifacts.paths import sanitize_path
from loopml.artifacts.store import ArtifactStore, BlobInfo, open_artifact_store

__all__ = ["ArtifactStore", "BlobInfo", "open_artifact_store", "sanitize_path"]
