"""What a replica serves: `DeploymentSpec`s (a name and its weighted model versions), and where they come from.

A `SpecSource` returns every deployment the replica should host; `ModelHost` polls it and applies changes.
`StaticSpecSource` holds specs in memory (tests, `loopml serve --model-dir`); `DirectorySpecSource` reads
`deployments.json` from a directory, so anything that can write a file (a config map, a deploy script) can
drive a replica. A store-backed source implements the same one-method protocol.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson

from loopml.errors import InvalidInput

__all__ = [
    "DEPLOYMENTS_FILE",
    "ROLES",
    "STRATEGIES",
    "DeploymentSpec",
    "DirectorySpecSource",
    "ServingVersion",
    "SpecSource",
    "StaticSpecSource",
    "parse_specs",
]

DEPLOYMENTS_FILE = "deployments.json"
ROLES = ("stable", "canary", "shadow")
STRATEGIES = ("direct", "canary", "ab", "shadow")
"""As `loopml deploy` names them; `single`, the name of `direct` in older deployments files, is read as `direct`."""
LEGACY_STRATEGIES = {"single": "direct"}


@dataclass(frozen=True)
class ServingVersion:
    """One model version inside a deployment: where its package is, its traffic weight and its role.

    Shadow versions take no live traffic (their weight is ignored): they get a copy of each request.
    """

    model: str
    version: int
    package_dir: Path
    weight: int = 100
    role: str = "stable"

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise InvalidInput("a serving version needs a model name")
        if type(self.version) is not int or self.version < 0:
            raise InvalidInput(f"model {self.model!r}: version must be a non-negative integer, got {self.version!r}")
        if type(self.weight) is not int or self.weight < 0:
            raise InvalidInput(f"{self.label}: weight must be a non-negative integer, got {self.weight!r}")
        if self.role not in ROLES:
            raise InvalidInput(f"{self.label}: role must be one of {ROLES}, got {self.role!r}")
        object.__setattr__(self, "package_dir", Path(self.package_dir))

    @property
    def key(self) -> tuple[str, int]:
        return (self.model, self.version)

    @property
    def label(self) -> str:
        """`model/version`, as the `X-Loopml-Model-Version` header names it."""
        return f"{self.model}/{self.version}"


@dataclass(frozen=True)
class DeploymentSpec:
    """A named endpoint: its versions with weights (at least one live, i.e. non-shadow, with weight > 0).

    `sticky_key` names a request field whose value routes the request (one key, one version), used when the
    request carries no `X-Loopml-Key` header. `revision` increases with every change of the spec.
    """

    name: str
    versions: tuple[ServingVersion, ...]
    revision: int = 0
    sticky_key: str | None = None
    strategy: str = "direct"
    feature_service: str | None = None
    """The feature service whose features the replica fetches before `predict` (see `serving.features`)."""
    project: str = "default"
    """The project of the deployment, where its feature service is defined."""
    missing_features: str = "refuse"
    """`refuse` (404) or `default` (the declared defaults) for an entity with no value within the TTL."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise InvalidInput(f"a deployment name must be a non-empty string without '/', got {self.name!r}")
        object.__setattr__(self, "versions", tuple(self.versions))
        object.__setattr__(self, "strategy", LEGACY_STRATEGIES.get(self.strategy, self.strategy))
        if self.strategy not in STRATEGIES:
            raise InvalidInput(f"deployment {self.name!r}: strategy must be one of {STRATEGIES}")
        keys = [v.key for v in self.versions]
        if len(set(keys)) != len(keys):
            raise InvalidInput(f"deployment {self.name!r}: a model version is listed twice")
        if not any(v.role != "shadow" and v.weight > 0 for v in self.versions):
            raise InvalidInput(f"deployment {self.name!r}: needs at least one non-shadow version with weight > 0")
        if self.sticky_key is not None and (not isinstance(self.sticky_key, str) or not self.sticky_key):
            raise InvalidInput(f"deployment {self.name!r}: sticky_key must be a non-empty field name")
        if self.feature_service is not None and (not isinstance(self.feature_service, str) or not self.feature_service):
            raise InvalidInput(f"deployment {self.name!r}: feature_service must be a feature service's name")
        if self.missing_features not in ("refuse", "default"):
            raise InvalidInput(f"deployment {self.name!r}: missing_features must be 'refuse' or 'default'")

    @property
    def live(self) -> tuple[ServingVersion, ...]:
        """The versions that answer requests (non-shadow, weight > 0), in spec order."""
        return tuple(v for v in self.versions if v.role != "shadow" and v.weight > 0)

    @property
    def shadows(self) -> tuple[ServingVersion, ...]:
        return tuple(v for v in self.versions if v.role == "shadow")


@runtime_checkable
class SpecSource(Protocol):
    """Where a replica reads its deployments; `load` is called from a worker thread and may block."""

    def load(self) -> dict[str, DeploymentSpec]: ...


class StaticSpecSource:
    """Specs held in memory; `set` replaces them (the host picks the change up on its next poll)."""

    def __init__(self, specs: Iterable[DeploymentSpec] = ()) -> None:
        self._lock = threading.Lock()
        self._specs = _by_name(specs)

    def set(self, specs: Iterable[DeploymentSpec]) -> None:
        by_name = _by_name(specs)
        with self._lock:
            self._specs = by_name

    def load(self) -> dict[str, DeploymentSpec]:
        with self._lock:
            return dict(self._specs)


class DirectorySpecSource:
    """Reads `deployments.json` (or `filename`) in `directory` (relative package paths resolve against the directory).

    The file is `{"deployments": [{"name", "revision", "sticky_key", "strategy", "feature_service", "project",
    "missing_features", "versions": [{"model",
    "version", "package_dir", "weight", "role"}]}]}`. Replace it atomically (write, then rename) so a poll never
    reads half a file; a file that does not parse raises `InvalidInput` and the host keeps what it serves.
    """

    def __init__(self, directory: str | Path, filename: str = DEPLOYMENTS_FILE) -> None:
        self.path = Path(directory) / filename

    def load(self) -> dict[str, DeploymentSpec]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            raise InvalidInput(f"{self.path}: no deployments file") from None
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"{self.path}: not valid JSON ({exc})") from None
        return parse_specs(data, base=self.path.parent)


def parse_specs(data: object, *, base: Path | None = None) -> dict[str, DeploymentSpec]:
    """Deployment specs from their JSON form (see `DirectorySpecSource`); `InvalidInput` names the bad field."""
    if not isinstance(data, Mapping) or not isinstance(data.get("deployments"), list):
        raise InvalidInput('a deployments file must be an object with a "deployments" list')
    specs = []
    for i, item in enumerate(data["deployments"]):
        where = f"deployments[{i}]"
        obj = _object(
            item,
            where,
            required={"name", "versions"},
            optional={"revision", "sticky_key", "strategy", "feature_service", "project", "missing_features"},
        )
        versions = []
        for j, raw in enumerate(_field(obj, "versions", list, where)):
            at = f"{where}.versions[{j}]"
            ver = _object(raw, at, required={"model", "version", "package_dir"}, optional={"weight", "role"})
            package_dir = Path(_field(ver, "package_dir", str, at))
            if base is not None and not package_dir.is_absolute():
                package_dir = base / package_dir
            versions.append(
                ServingVersion(
                    model=_field(ver, "model", str, at),
                    version=_field(ver, "version", int, at),
                    package_dir=package_dir,
                    weight=_field(ver, "weight", int, at, 100),
                    role=_field(ver, "role", str, at, "stable"),
                )
            )
        specs.append(
            DeploymentSpec(
                name=_field(obj, "name", str, where),
                versions=tuple(versions),
                revision=_field(obj, "revision", int, where, 0),
                sticky_key=_field(obj, "sticky_key", str, where, None),
                strategy=_field(obj, "strategy", str, where, "direct"),
                feature_service=_field(obj, "feature_service", str, where, None),
                project=_field(obj, "project", str, where, "default"),
                missing_features=_field(obj, "missing_features", str, where, "refuse"),
            )
        )
    return _by_name(specs)


def _by_name(specs: Iterable[DeploymentSpec]) -> dict[str, DeploymentSpec]:
    by_name: dict[str, DeploymentSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            raise InvalidInput(f"deployment {spec.name!r} is listed twice")
        by_name[spec.name] = spec
    return by_name


def _object(item: object, where: str, *, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidInput(f"{where} must be an object")
    missing = sorted(required - item.keys())
    unknown = sorted(item.keys() - required - optional)
    if missing:
        raise InvalidInput(f"{where}: missing field {missing[0]!r}")
    if unknown:
        raise InvalidInput(f"{where}: unknown field {unknown[0]!r}")
    return item


_MISSING: Any = object()


def _field(obj: dict[str, Any], name: str, kind: type, where: str, default: Any = _MISSING) -> Any:
    value = obj.get(name, default)
    if value is _MISSING:
        raise InvalidInput(f"{where}: missing field {name!r}")
    if value is not default and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise InvalidInput(f"{where}.{name} must be a {kind.__name__}, got {value!r}")
    return value
