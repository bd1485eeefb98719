"""A version's package checked against what its run recorded: verified, or every problem named."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from loopml.domain import ArtifactRecord, ModelVersion, ModelVersionStatus
from loopml.registry import check_package
from loopml.registry.manifest import FileEntry, Manifest

MODEL = b"model bytes"
SHA = hashlib.sha256(MODEL).hexdigest()


def _package() -> tuple[bytes, ModelVersion, dict[str, ArtifactRecord]]:
    manifest = Manifest("sklearn", "skops", {"model.skops": FileEntry(SHA, len(MODEL))}, "3.12.0", 0).to_json()
    version = ModelVersion(
        "bike",
        1,
        "r" * 32,
        "model",
        hashlib.sha256(manifest).hexdigest(),
        "sklearn",
        ModelVersionStatus.READY,
        "",
        0,
        "a",
    )
    recorded = {"model/model.skops": ArtifactRecord("r" * 32, "model/model.skops", SHA, len(MODEL), 0)}
    return manifest, version, recorded


def test_a_package_as_recorded_is_verified() -> None:
    manifest, version, recorded = _package()
    check = check_package(version, manifest, recorded)
    assert check.verified and check.problems == ()
    assert [(f.path, f.sha256, f.verified) for f in check.files] == [("model.skops", SHA, True)]


def test_every_difference_is_a_named_problem() -> None:
    manifest, version, recorded = _package()
    other = ArtifactRecord("r" * 32, "model/model.skops", "0" * 64, 3, 0)
    check = check_package(replace(version, manifest_digest="f" * 64), manifest, {"model/model.skops": other})
    assert not check.verified and not check.files[0].verified
    assert "registered with ffff" in check.problems[0] and "recorded 0000" in check.problems[1]
    missing = check_package(version, manifest, {})
    assert missing.problems == ("model.skops: listed in the manifest, but the run recorded no such artifact",)
    broken = check_package(version, b"{not json", recorded)
    assert broken.manifest is None and len(broken.problems) == 2
