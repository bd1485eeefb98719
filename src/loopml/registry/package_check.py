"""Whether a registered version's package, as the run recorded it, is what its manifest says: the manifest's
sha256 is the version's `manifest_digest`, and every file it lists was recorded among the run's artifacts
with the same sha256 and size. Read from metadata only (the artifact store is content-addressed and re-hashes
every blob on download, so a recorded digest is the digest of the bytes a reader gets)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from loopml.domain import ArtifactRecord, ModelVersion
from loopml.errors import InvalidInput
from loopml.registry.manifest import MANIFEST_FILE, Manifest


@dataclass(frozen=True)
class PackageFile:
    """A file the manifest lists, and what the run recorded under that path (None: nothing)."""

    path: str
    sha256: str
    size: int
    recorded_sha256: str | None
    recorded_size: int | None

    @property
    def verified(self) -> bool:
        return self.recorded_sha256 == self.sha256 and self.recorded_size == self.size


@dataclass(frozen=True)
class PackageCheck:
    manifest: Manifest | None
    """None when the manifest could not be parsed (the reason is in `problems`)."""
    manifest_sha256: str
    files: tuple[PackageFile, ...]
    problems: tuple[str, ...]

    @property
    def verified(self) -> bool:
        return not self.problems


def check_package(version: ModelVersion, manifest: bytes, recorded: Mapping[str, ArtifactRecord]) -> PackageCheck:
    """Check `manifest` (the bytes of `<artifact_path>/loopml-model.json`) against `version` and the run's
    artifact records (`recorded`, by path relative to the run)."""
    problems: list[str] = []
    digest = hashlib.sha256(manifest).hexdigest()
    if digest != version.manifest_digest:
        problems.append(
            f"{MANIFEST_FILE} has sha256 {digest}, but version {version.version} was registered with "
            f"{version.manifest_digest}"
        )
    try:
        parsed = Manifest.parse(manifest)
    except InvalidInput as error:
        problems.append(error.message)
        return PackageCheck(None, digest, (), tuple(problems))
    files = []
    for path, entry in sorted(parsed.files.items()):
        record = recorded.get(f"{version.artifact_path}/{path}")
        found = PackageFile(
            path,
            entry.sha256,
            entry.size,
            None if record is None else record.digest,
            None if record is None else record.size,
        )
        if record is None:
            problems.append(f"{path}: listed in the manifest, but the run recorded no such artifact")
        elif not found.verified:
            problems.append(
                f"{path}: the manifest says sha256 {entry.sha256} ({entry.size} bytes), the run recorded "
                f"{record.digest} ({record.size} bytes)"
            )
        files.append(found)
    return PackageCheck(parsed, digest, tuple(files), tuple(problems))
