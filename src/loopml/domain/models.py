"""Model registry vocabulary: registered models, their numbered versions, aliases and `models:/` URIs.

A version is always made from a model a run logged (run id + the package's path among that run's
artifacts + the sha256 of its manifest), never from a path or URL. Aliases (`champion`, `challenger`, any
name) point at one version each and replace MLflow's stages.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import InvalidInput

MANIFEST = "loopml-model.json"
"""The file at the root of every model package; a version records the sha256 of the run's copy."""
LATEST = "latest"
"""Reserved alias: `models:/name@latest` is the highest READY version."""
URI_SCHEME = "models:/"

_VERSION = re.compile(r"^[1-9][0-9]{0,9}$")


class ModelVersionStatus(str, enum.Enum):
    READY = "READY"
    ARCHIVED = "ARCHIVED"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    """Unique across projects, so `models:/name@alias` is unambiguous."""
    project: str
    description: str
    owner: str
    """The actor who created the model."""
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    """Alias -> version number."""
    latest_version: int | None = None
    """The highest version number, whatever its status; None before the first version."""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: int
    run_id: str
    artifact_path: str
    """Where the package lies among the run's artifacts (its manifest is `<artifact_path>/loopml-model.json`)."""
    manifest_digest: str
    """sha256 of the manifest, checked against the run's artifact when the version was created."""
    flavor: str
    status: ModelVersionStatus
    description: str
    created_at: int
    created_by: str
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    """The run's latest metric values when the version was registered (a snapshot; later logging does not
    change it)."""
    datasets: tuple[tuple[str, str], ...] = ()
    """(dataset digest, role) pairs of the run when the version was registered."""
    signature: dict[str, Any] | None = None
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        return f"{URI_SCHEME}{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class AliasChange:
    """One move of a model's alias, from the audit log: who pointed `alias` from `previous` to `version`
    (None when deleted), when, and why."""

    seq: int
    time: int
    actor: str
    alias: str
    version: int | None
    previous: int | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class ModelReference:
    """A parsed model URI: the model's name and exactly one of a version number or an alias."""

    name: str
    version: int | None = None
    alias: str | None = None


def parse_model_uri(text: str, alias_or_version: str | int | None = None) -> ModelReference:
    """Parse `models:/name@alias`, `models:/name/3`, `models:/name@latest`, or the same without `models:/`.

    With `alias_or_version` given, `text` is a bare model name and the second argument picks the version
    (an int or a string of digits is a version number, any other string an alias). Names and aliases are
    not checked here beyond the syntax of the reference; the registry checks them.

    >>> parse_model_uri("models:/bike@champion")
    ModelReference(name='bike', version=None, alias='champion')
    >>> parse_model_uri("bike", 3)
    ModelReference(name='bike', version=3, alias=None)
    """
    if not isinstance(text, str) or not text:
        raise InvalidInput(f"a model reference must be a non-empty string, got {text!r}")
    body = text[len(URI_SCHEME) :] if text.startswith(URI_SCHEME) else text
    if alias_or_version is not None:
        if "@" in body or "/" in body:
            raise InvalidInput(
                f"{text!r} already names a version or alias; pass either a full reference or a name with "
                "alias_or_version, not both"
            )
        return _reference(text, body, alias_or_version)
    if "@" in body:
        name, _, alias = body.partition("@")
        return _reference(text, name, alias, is_alias=True)
    if "/" in body:
        name, _, version = body.partition("/")
        if "/" in version:
            raise InvalidInput(f"model reference {text!r} has too many '/': use models:/<name>/<version>")
        if not _VERSION.match(version):
            raise InvalidInput(
                f"model reference {text!r}: {version!r} is not a version number (a positive integer); "
                "for an alias write models:/<name>@<alias>"
            )
        return _reference(text, name, int(version))
    raise InvalidInput(
        f"model reference {text!r} names no version: use models:/{body}@<alias>, models:/{body}/<version> "
        f"or models:/{body}@latest"
    )


def _reference(text: str, name: str, selector: str | int, is_alias: bool = False) -> ModelReference:
    if not name:
        raise InvalidInput(f"model reference {text!r} has no model name")
    if isinstance(selector, bool):
        raise InvalidInput(f"a version must be an integer or an alias, got {selector!r}")
    if isinstance(selector, int):
        if selector < 1:
            raise InvalidInput(f"model versions start at 1, got {selector}")
        return ModelReference(name=name, version=selector)
    if not isinstance(selector, str) or not selector:
        raise InvalidInput(f"model reference {text!r} has an empty alias or version")
    if not is_alias and _VERSION.match(selector):
        return ModelReference(name=name, version=int(selector))
    return ModelReference(name=name, alias=selector)


class LoggedModelStatus(str, enum.Enum):
    """Where an MLflow 3 logged model is: files being uploaded, finalized, or given up."""

    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class LoggedModelRecord:
    """A model a run logged through MLflow 3's API (`mlflow.<flavor>.log_model`).

    Its MLflow files are the run's artifacts under `mlflow_prefix`; once finalized READY, `manifest_digest`
    names the loopml package made from them under `package_prefix` (None when they could not be imported:
    `status_message` says why). A registered version of it is an ordinary loopml version of that package."""

    id: str
    experiment_id: int
    run_id: str
    name: str
    model_type: str
    status: LoggedModelStatus
    status_message: str
    manifest_digest: str | None
    flavor: str | None
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    @property
    def mlflow_prefix(self) -> str:
        return f"mlflow-models/{self.id}"

    @property
    def package_prefix(self) -> str:
        return f"models/{self.id}"
