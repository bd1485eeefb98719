"""Load the package of a model version straight from the stores, verified, for scoring in a process that has
the stores but no client (the retraining loop inside `loopml server`)."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path

from loopml.artifacts import ArtifactStore
from loopml.domain import ModelVersion
from loopml.domain.models import MANIFEST
from loopml.errors import ArtifactCorrupted
from loopml.registry import LoadedModel, Manifest, load_model, verify_package
from loopml.store import MetadataStore

__all__ = ["StoreModelSource"]


class StoreModelSource:
    """`ModelSource` over the metadata and artifact stores: the package of a version is fetched into
    `cache_dir/<manifest digest>` once, verified file by file against the digest the registry pinned, loaded,
    and kept loaded. Pickle-based flavors load only with `trust_pickle` (never in the API server process)."""

    def __init__(
        self, store: MetadataStore, artifacts: ArtifactStore, cache_dir: Path, trust_pickle: bool = False
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.cache_dir = Path(cache_dir)
        self.trust_pickle = trust_pickle
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def __call__(self, version: ModelVersion) -> LoadedModel:
        with self._lock:
            found = self._loaded.get(version.manifest_digest)
        if found is not None:
            return found
        directory = self.package(version)
        loaded = load_model(directory, trust_pickle=self.trust_pickle, expected_digest=version.manifest_digest)
        with self._lock:
            self._loaded[version.manifest_digest] = loaded
        return loaded

    def package(self, version: ModelVersion) -> Path:
        target = self.cache_dir / version.manifest_digest
        if target.is_dir():
            verify_package(target, expected_digest=version.manifest_digest)
            return target
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = self.cache_dir / f".{version.manifest_digest}.{uuid.uuid4().hex}"
        try:
            prefix = f"{version.artifact_path}/"
            with self.store.read() as unit:
                records = {r.path: r.digest for r in unit.artifacts.list(version.run_id, prefix)}
            manifest_digest = records.get(prefix + MANIFEST)
            if manifest_digest is None:
                raise ArtifactCorrupted(f"run {version.run_id} has no {prefix}{MANIFEST} any more")
            self.artifacts.get_file(manifest_digest, partial / MANIFEST)
            manifest = Manifest.parse((partial / MANIFEST).read_bytes())
            for relative in manifest.files:
                digest = records.get(prefix + relative)
                if digest is None:
                    raise ArtifactCorrupted(f"run {version.run_id} has no artifact {prefix}{relative}")
                self.artifacts.get_file(digest, partial / relative)
            verify_package(partial, expected_digest=version.manifest_digest)
            try:
                os.replace(partial, target)
            except OSError:
                if not target.is_dir():  # another process published the same package first: keep theirs
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return target
