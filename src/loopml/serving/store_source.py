"""`StoreSpecSource`: a replica's deployments read from the metadata store (what `loopml deploy` writes).

Each `load` reads the current revision of the named deployments and, for each model version in them, makes
sure its package is in the local cache: fetched from the artifact store by the digests the run recorded, then
checked with `verify_package` against the registry's manifest digest before it is published in the cache
(a directory named by that digest, so a package is fetched once and shared by every deployment using it).
A replica needs only the database and the artifact store, never the control plane (`loopml server`).

A deployment whose package cannot be fetched or fails verification is left out of what `load` returns, its
reason in `failures`: one bad package never keeps the replica's other deployments from loading.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from loopml.artifacts import ArtifactStore, open_artifact_store
from loopml.domain import Deployment, ModelVersion
from loopml.domain.models import MANIFEST
from loopml.errors import ArtifactCorrupted, InvalidInput, LoopmlError
from loopml.registry import Manifest, verify_package
from loopml.serving.specs import DeploymentSpec, ServingVersion
from loopml.store import MetadataStore

__all__ = ["StoreSpecSource"]

logger = logging.getLogger("loopml.serving")


class StoreSpecSource:
    """The deployments `names` as stored in `store`, with their packages fetched from `artifacts` into
    `cache_dir`. A named deployment that does not exist (yet) is left out until it does."""

    def __init__(
        self, store: MetadataStore, artifacts: ArtifactStore, names: Sequence[str], cache_dir: Path | str
    ) -> None:
        if not names:
            raise InvalidInput("name at least one deployment to serve")
        self.store = store
        self.artifacts = artifacts
        self.names = tuple(names)
        self.cache_dir = Path(cache_dir)
        self.failures: dict[str, str] = {}
        """The deployments the last `load` left out because a package failed, with the reason."""
        self._verified: set[str] = set()
        self._lock = threading.Lock()
        self._listener = store.deployment_listener()

    @classmethod
    def open(
        cls,
        database_url: str,
        artifact_root: str,
        names: Sequence[str],
        cache_dir: Path | str,
        s3_endpoint_url: str | None = None,
    ) -> StoreSpecSource:
        store = MetadataStore.open(database_url, upgrade=False)
        return cls(store, open_artifact_store(artifact_root, s3_endpoint_url), names, cache_dir)

    @property
    def notifies(self) -> bool:
        """Whether `wait_for_change` hears changes (PostgreSQL); else the host polls."""
        return self._listener is not None

    def wait_for_change(self, timeout: float) -> bool:
        """Block until a deployment changes (True) or `timeout` seconds pass (False)."""
        if self._listener is None:
            time.sleep(timeout)
            return False
        return self._listener.wait(timeout)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()

    def load(self) -> dict[str, DeploymentSpec]:
        deployments: list[Deployment] = []
        versions: dict[tuple[str, int], ModelVersion] = {}
        with self.store.read() as unit:
            for name in self.names:
                found = unit.deployments.find(name)
                if found is None:
                    continue
                deployments.append(found)
                for v in found.versions:
                    if (v.model, v.version) not in versions:
                        model = unit.models.find(v.model)
                        if model is None:
                            raise InvalidInput(f"deployment {name!r} names model {v.model!r}, which does not exist")
                        versions[(v.model, v.version)] = unit.model_versions.get(model, v.version)
        specs: dict[str, DeploymentSpec] = {}
        failures: dict[str, str] = {}
        for deployment in deployments:
            serving: list[ServingVersion] = []
            for v in deployment.versions:
                if v.weight == 0 and v.role != "shadow":  # a rolled-back canary at weight 0 is not loaded
                    continue
                try:
                    package_dir = self.package(versions[(v.model, v.version)])
                except (LoopmlError, OSError) as error:  # this deployment's package: the others still load
                    failures[deployment.name] = f"{type(error).__name__}: {v.model}/{v.version}: {error}"
                    break
                serving.append(ServingVersion(v.model, v.version, package_dir, weight=v.weight, role=v.role))
            if deployment.name in failures:
                continue
            specs[deployment.name] = DeploymentSpec(
                name=deployment.name,
                versions=tuple(serving),
                revision=deployment.revision,
                sticky_key=deployment.sticky_key,
                strategy=deployment.strategy,
                feature_service=deployment.feature_service,
                project=deployment.project,
                missing_features=deployment.missing_features,
            )
        self.failures = failures
        return specs

    def package(self, version: ModelVersion) -> Path:
        """The verified package directory of `version` in the cache, fetched first if missing."""
        target = self.cache_dir / version.manifest_digest
        with self._lock:
            if version.manifest_digest in self._verified and target.is_dir():
                return target
        if target.is_dir():
            try:
                verify_package(target, expected_digest=version.manifest_digest)
            except ArtifactCorrupted as exc:
                raise ArtifactCorrupted(
                    f"the cached package of {version.name}/{version.version} in {target} fails verification ({exc})"
                ) from None
        else:
            self._fetch(version, target)
        with self._lock:
            self._verified.add(version.manifest_digest)
        return target

    def _fetch(self, version: ModelVersion, target: Path) -> None:
        partial = self.cache_dir / f".{version.manifest_digest}.{uuid.uuid4().hex}"
        try:
            with self.store.read() as unit:
                records = {r.path: r.digest for r in unit.artifacts.list(version.run_id, f"{version.artifact_path}/")}
            prefix = f"{version.artifact_path}/"
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
            try:
                verify_package(partial, expected_digest=version.manifest_digest)
            except ArtifactCorrupted as exc:
                raise ArtifactCorrupted(
                    f"the package of {version.name}/{version.version} no longer matches what was registered ({exc})"
                ) from None
            try:
                os.replace(partial, target)
            except OSError:
                if not target.is_dir():  # another replica sharing the cache published it first: keep theirs
                    raise
            logger.info("fetched the package of %s/%s into %s", version.name, version.version, target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
