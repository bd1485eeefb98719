"""The manifest of a model package, `loopml-model.json`: what the package holds and how to load it.

It lists every other file of the package with its sha256 and size, so the manifest's own sha256 identifies the
whole package. Reading is strict: a manifest that is not JSON, lacks a field, has an unknown one, or a field
of the wrong type is refused with `InvalidInput` naming the field.

    {"format_version": 1, "flavor": "sklearn", "loader": "loopml.registry.flavors.sklearn_flavor",
     "files": {"model.skops": {"sha256": "9f2c...", "size": 48213}}, "signature": {...}, ...}
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.artifacts.paths import sanitize_path
from loopml.errors import InvalidInput
from loopml.registry.signature import Signature

__all__ = ["FORMAT_VERSION", "MANIFEST_FILE", "DatasetRef", "FileEntry", "Manifest"]

MANIFEST_FILE = "loopml-model.json"
FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = (
    "format_version",
    "flavor",
    "loader",
    "files",
    "signature",
    "input_example",
    "python_version",
    "packages",
    "source_run_id",
    "datasets",
    "metrics",
    "reference_profile_id",
    "created_at",
    "requires_pickle",
    "trusted_types",
    "flavor_options",
)


@dataclass(frozen=True)
class FileEntry:
    """A file of the package: its sha256 (hex) and size in bytes."""

    sha256: str
    size: int


@dataclass(frozen=True)
class DatasetRef:
    """A dataset the model was trained or evaluated on, by content digest; `role` is "training", "eval"..."""

    digest: str
    role: str
    name: str | None = None


@dataclass(frozen=True)
class Manifest:
    """Everything a package says about itself; `files` excludes the manifest file itself."""

    flavor: str
    loader: str
    files: Mapping[str, FileEntry]
    python_version: str
    created_at: int
    signature: Signature | None = None
    input_example: str | None = None
    packages: Mapping[str, str] = field(default_factory=dict)
    source_run_id: str | None = None
    datasets: tuple[DatasetRef, ...] = ()
    metrics: Mapping[str, float] | None = None
    reference_profile_id: str | None = None
    requires_pickle: bool = False
    trusted_types: tuple[str, ...] = ()
    flavor_options: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "loader": self.loader,
            "files": {p: {"sha256": e.sha256, "size": e.size} for p, e in sorted(self.files.items())},
            "signature": None if self.signature is None else self.signature.to_dict(),
            "input_example": self.input_example,
            "python_version": self.python_version,
            "packages": dict(sorted(self.packages.items())),
            "source_run_id": self.source_run_id,
            "datasets": [{"digest": d.digest, "role": d.role, "name": d.name} for d in self.datasets],
            "metrics": None if self.metrics is None else dict(self.metrics),
            "reference_profile_id": self.reference_profile_id,
            "created_at": self.created_at,
            "requires_pickle": self.requires_pickle,
            "trusted_types": list(self.trusted_types),
            "flavor_options": dict(self.flavor_options),
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False).encode() + b"\n"

    def write(self, directory: Path) -> str:
        """Write `loopml-model.json` into `directory`; return its sha256, the digest of the whole package."""
        data = self.to_json()
        (Path(directory) / MANIFEST_FILE).write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        """Read and validate `directory/loopml-model.json`."""
        return cls.parse(read_manifest_bytes(Path(directory)))

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        """Parse manifest bytes strictly (`InvalidInput` naming the problem)."""
        try:
            raw = json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{MANIFEST_FILE} is not valid JSON: {exc}") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: object) -> Manifest:
        if not isinstance(raw, dict):
            raise InvalidInput(f"{MANIFEST_FILE} must hold a JSON object, got {type(raw).__name__}")
        version = raw.get("format_version")
        if type(version) is not int:
            raise InvalidInput(f"{MANIFEST_FILE}: format_version must be an integer, got {version!r}")
        if version != FORMAT_VERSION:
            raise InvalidInput(
                f"{MANIFEST_FILE}: unknown format_version {version} (this loopml reads version {FORMAT_VERSION}; "
                "a newer loopml may have written it)"
            )
        missing = [f for f in _FIELDS if f not in raw]
        if missing:
            raise InvalidInput(f"{MANIFEST_FILE}: missing field {missing[0]!r}")
        unknown = sorted(set(raw) - set(_FIELDS))
        if unknown:
            raise InvalidInput(f"{MANIFEST_FILE}: unknown field {unknown[0]!r}")
        return cls(
            flavor=_typed(raw, "flavor", str),
            loader=_typed(raw, "loader", str),
            files=_files(raw["files"]),
            signature=_signature(raw["signature"]),
            input_example=_optional(raw, "input_example", str),
            python_version=_typed(raw, "python_version", str),
            packages=_str_map(raw["packages"], "packages"),
            source_run_id=_optional(raw, "source_run_id", str),
            datasets=_datasets(raw["datasets"]),
            metrics=_metrics(raw["metrics"]),
            reference_profile_id=_optional(raw, "reference_profile_id", str),
            created_at=_typed(raw, "created_at", int),
            requires_pickle=_typed(raw, "requires_pickle", bool),
            trusted_types=tuple(_str_list(raw["trusted_types"], "trusted_types")),
            flavor_options=_typed(raw, "flavor_options", dict),
        )


def read_manifest_bytes(directory: Path) -> bytes:
    path = directory / MANIFEST_FILE
    if not path.is_file() or path.is_symlink():
        raise InvalidInput(f"{directory} is not a loopml model package: {MANIFEST_FILE} is missing")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise InvalidInput(f"{MANIFEST_FILE} is larger than {MAX_MANIFEST_BYTES} bytes")
    return path.read_bytes()


def check_package_path(name: object) -> str:
    """A file name listed in a manifest: a plain relative '/'-separated path inside the package."""
    if not isinstance(name, str):
        raise InvalidInput(f"{MANIFEST_FILE}: file names must be strings, got {name!r}")
    try:
        clean = sanitize_path(name)
    except InvalidInput as exc:
        raise InvalidInput(f"{MANIFEST_FILE}: file {name!r} is not a plain relative path ({exc})") from None
    if clean != name or name == MANIFEST_FILE:
        raise InvalidInput(f"{MANIFEST_FILE}: file {name!r} is not a plain relative path inside the package")
    return name


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise InvalidInput(f"{MANIFEST_FILE}: key {duplicate!r} appears twice")
    return result


def _no_constants(name: str) -> None:
    raise InvalidInput(f"{MANIFEST_FILE}: {name} is not valid JSON")


def _typed(raw: dict[str, Any], name: str, kind: type) -> Any:
    value = raw[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(f"{MANIFEST_FILE}: {name} must be {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _optional(raw: dict[str, Any], name: str, kind: type) -> Any:
    return None if raw[name] is None else _typed(raw, name, kind)


def _kind_name(kind: type) -> str:
    return {str: "a string", int: "an integer", bool: "true or false", dict: "an object"}.get(kind, kind.__name__)


def _files(value: object) -> dict[str, FileEntry]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{MANIFEST_FILE}: files must be an object, got {type(value).__name__}")
    files = {}
    for name, entry in value.items():
        check_package_path(name)
        if not isinstance(entry, dict) or set(entry) != {"sha256", "size"}:
            raise InvalidInput(f"{MANIFEST_FILE}: files[{name!r}] must be an object with sha256 and size")
        sha, size = entry["sha256"], entry["size"]
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise InvalidInput(f"{MANIFEST_FILE}: files[{name!r}].sha256 must be 64 lowercase hex characters")
        if type(size) is not int or size < 0:
            raise InvalidInput(f"{MANIFEST_FILE}: files[{name!r}].size must be a non-negative integer")
        files[name] = FileEntry(sha, size)
    return files


def _signature(value: object) -> Signature | None:
    if value is None:
        return None
    try:
        return Signature.from_dict(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{MANIFEST_FILE}: invalid signature: {exc}") from None


def _str_map(value: object, name: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidInput(f"{MANIFEST_FILE}: {name} must be an object of strings")
    return value


def _str_list(value: object, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{MANIFEST_FILE}: {name} must be a list of strings")
    return value


def _datasets(value: object) -> tuple[DatasetRef, ...]:
    if not isinstance(value, list):
        raise InvalidInput(f"{MANIFEST_FILE}: datasets must be a list")
    refs = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"digest", "role", "name"}:
            raise InvalidInput(f"{MANIFEST_FILE}: datasets[{i}] must be an object with digest, role and name")
        digest, role, name = item["digest"], item["role"], item["name"]
        if not isinstance(digest, str) or not isinstance(role, str) or not isinstance(name, str | None):
            raise InvalidInput(
                f"{MANIFEST_FILE}: datasets[{i}]: digest and role must be strings, name a string or null"
            )
        refs.append(DatasetRef(digest, role, name))
    return tuple(refs)


def _metrics(value: object) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value.values()
    ):
        raise InvalidInput(f"{MANIFEST_FILE}: metrics must be an object of finite numbers or null")
    return {k: float(v) for k, v in value.items()}
