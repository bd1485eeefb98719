"""Feature store vocabulary: stored definition versions, the changes a plan shows, materialization progress.

A definition (entity, feature view, on-demand view, feature service) is stored as a JSON spec with the
sha256 of its canonical form; applying a spec whose digest differs from the current one makes a new version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DefinitionKind = Literal["entity", "feature_view", "on_demand_view", "feature_service"]
ChangeAction = Literal["create", "update", "delete", "unchanged"]

DEFINITION_KINDS: tuple[DefinitionKind, ...] = ("entity", "feature_view", "on_demand_view", "feature_service")


@dataclass(frozen=True, slots=True)
class StoredDefinition:
    """One version of a definition as the metadata store holds it."""

    project: str
    kind: DefinitionKind
    name: str
    version: int
    digest: str
    spec: dict[str, Any]
    created_at: int
    created_by: str


@dataclass(frozen=True, slots=True)
class DefinitionChange:
    """What `apply` would do to one definition."""

    kind: DefinitionKind
    name: str
    action: ChangeAction
    version: int | None
    """The version it has now (None when it does not exist yet)."""
    details: tuple[str, ...] = ()
    """Which fields differ, for an update."""


@dataclass(frozen=True, slots=True)
class Plan:
    project: str
    changes: tuple[DefinitionChange, ...]

    @property
    def has_changes(self) -> bool:
        return any(change.action != "unchanged" for change in self.changes)


@dataclass(frozen=True, slots=True)
class Materialization:
    """Progress of one materialization job of a view into an online store, kept so a killed job resumes.

    The job writes the latest row per entity in [start_ms, end_ms) bucket by bucket (entities are split
    into `buckets` by a hash of their key); `done_buckets` are written and never redone."""

    project: str
    view: str
    version: int
    store: str
    start_ms: int
    end_ms: int
    buckets: int
    done_buckets: int
    rows: int
    status: Literal["running", "done"]
    updated_at: int

    @property
    def finished(self) -> bool:
        return self.status == "done"


@dataclass(frozen=True, slots=True)
class FeatureLineage:
    """The feature view versions a training set (a logged dataset) was joined from."""

    digest: str
    views: tuple[tuple[str, int], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class OnlineFeatures:
    """Feature values for a list of entities, and how old each view's value is (seconds; None if missing)."""

    values: dict[str, list[Any]]
    age_seconds: dict[str, list[float | None]]

    def to_dict(self) -> dict[str, list[Any]]:
        return dict(self.values)
