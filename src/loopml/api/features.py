"""Feature store operations: definitions sent as data (plan, apply, list, get), online lookups, push, and
materialization (run, status). The project is the one named in the call (a project-scoped token's own by
default); sources are read by the server only under `LOOPML_FEATURES_SOURCE_DIRS` (see docs/features.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, JsonValue

from loopml.api.codecs import listed, one
from loopml.api.fields import Key, Name, no_nul
from loopml.api.operation import Codec, Operation, Request
from loopml.domain.features import (
    DefinitionChange,
    Materialization,
    OnlineFeatures,
    Plan,
    StoredDefinition,
)

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Ref = Annotated[str, Field(min_length=3, max_length=260), AfterValidator(no_nul)]
Time = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(no_nul)]
"""A date or time (`2012-12-31`, `2012-12-31T06:00:00Z`)."""
Kind = Literal["entity", "feature_view", "on_demand_view", "feature_service"]
Column = Annotated[list[JsonValue], Field(min_length=1, max_length=100_000)]

PROJECT = "project named in the call (default: the token's)"


class DefinitionIn(Request):
    kind: Kind
    name: Identifier
    spec: dict[Key, JsonValue]


class Definitions(Request):
    definitions: Annotated[list[DefinitionIn], Field(min_length=1, max_length=1000)]
    project: Name | None = None
    check_sources: bool = False
    """Read each view's source on the server to check its columns (only under its source directories)."""

    def arguments(self) -> dict[str, Any]:
        return {
            "definitions": [d.model_dump() for d in self.definitions],
            "project": self.project,
            "check_sources": self.check_sources,
        }


class ProjectQuery(Request):
    project: Name | None = None


class DefinitionPath(Request):
    kind: Kind
    name: Identifier
    version: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    project: Name | None = None


class OnlineLookup(Request):
    features: Annotated[list[Ref], Field(min_length=1, max_length=1000)] | Identifier
    """`view:feature` references, or a feature service's name."""
    entities: Annotated[dict[Identifier, Annotated[list[JsonValue], Field(min_length=1, max_length=10_000)]],
                        Field(min_length=1, max_length=16)]  # fmt: skip
    """Each join key -> its values, one per entity (all lists of the same length)."""
    project: Name | None = None


class Push(Request):
    view: Identifier
    rows: Annotated[dict[Identifier, Column], Field(min_length=1, max_length=1000)]
    """Columns: the view's join keys, timestamp (ISO text or epoch ms), created time if any, and features."""
    project: Name | None = None


class Materialize(Request):
    view: Identifier
    end: Time
    start: Time | None = None
    """Without it: from where the last finished run ended (incremental)."""
    project: Name | None = None


class ViewPath(Request):
    view: Identifier
    project: Name | None = None


def definition_to_json(d: StoredDefinition) -> dict[str, Any]:
    return {
        "project": d.project, "kind": d.kind, "name": d.name, "version": d.version, "digest": d.digest,
        "spec": d.spec, "created_at": d.created_at, "created_by": d.created_by,
    }  # fmt: skip


def definition_from_json(b: dict[str, Any]) -> StoredDefinition:
    return StoredDefinition(
        b["project"], b["kind"], b["name"], b["version"], b["digest"], b["spec"], b["created_at"], b["created_by"]
    )


def plan_to_json(plan: Plan) -> dict[str, Any]:
    changes = [
        {"kind": c.kind, "name": c.name, "action": c.action, "version": c.version, "details": list(c.details)}
        for c in plan.changes
    ]
    return {"project": plan.project, "changes": changes, "has_changes": plan.has_changes}


def plan_from_json(b: dict[str, Any]) -> Plan:
    changes = tuple(
        DefinitionChange(c["kind"], c["name"], c["action"], c["version"], tuple(c["details"])) for c in b["changes"]
    )
    return Plan(b["project"], changes)


def materialization_to_json(m: Materialization) -> dict[str, Any]:
    return {
        "project": m.project, "view": m.view, "version": m.version, "store": m.store, "start_ms": m.start_ms,
        "end_ms": m.end_ms, "buckets": m.buckets, "done_buckets": m.done_buckets, "rows": m.rows,
        "status": m.status, "updated_at": m.updated_at,
    }  # fmt: skip


def materialization_from_json(b: dict[str, Any]) -> Materialization:
    return Materialization(
        b["project"], b["view"], b["version"], b["store"], b["start_ms"], b["end_ms"], b["buckets"],
        b["done_buckets"], b["rows"], b["status"], b["updated_at"],
    )  # fmt: skip


_plan = one("plan", plan_to_json, plan_from_json)
_materialization = one("materialization", materialization_to_json, materialization_from_json)
_online = Codec[OnlineFeatures](
    lambda found, _: {"values": found.values, "age_seconds": found.age_seconds},
    lambda b: OnlineFeatures(b["values"], b["age_seconds"]),
)

PLAN_FEATURES: Operation[Plan] = Operation(
    "plan_features", "features", "plan_definitions", "viewer", "body", PROJECT, "POST", "/features/plan",
    Definitions, _plan, "features", summary="What applying these definitions would change (stores nothing)",
)  # fmt: skip
APPLY_FEATURES: Operation[Plan] = Operation(
    "apply_features", "features", "apply_definitions", "editor", "body", PROJECT, "POST", "/features/apply",
    Definitions, _plan, "features",
    summary="Store the project's definitions: a version per changed one, deletions for the ones not sent (audited)",
)  # fmt: skip
LIST_FEATURE_DEFINITIONS: Operation[list[StoredDefinition]] = Operation(
    "list_feature_definitions", "features", "list", "viewer", "body", PROJECT, "GET", "/features/definitions",
    ProjectQuery, listed("definitions", definition_to_json, definition_from_json), "features",
)  # fmt: skip
GET_FEATURE_DEFINITION: Operation[StoredDefinition] = Operation(
    "get_feature_definition", "features", "get", "viewer", "body", PROJECT,
    "GET", "/features/definitions/{kind}/{name}", DefinitionPath,
    one("definition", definition_to_json, definition_from_json), "features",
)  # fmt: skip
ONLINE_FEATURES: Operation[OnlineFeatures] = Operation(
    "online_features", "features", "online", "viewer", "body", PROJECT, "POST", "/features/online",
    OnlineLookup, _online, "features", summary="The online values of features for entities, with their age",
)  # fmt: skip
PUSH_FEATURES: Operation[int] = Operation(
    "push_features", "features", "push", "editor", "body", PROJECT, "POST", "/features/views/{view}/push",
    Push, Codec(lambda rows, _: {"rows": rows}, lambda b: int(b["rows"])), "features",
    summary="Append rows to a feature view, offline and online",
)  # fmt: skip
MATERIALIZE_FEATURES: Operation[Materialization] = Operation(
    "materialize_features", "features", "materialize", "editor", "body", PROJECT,
    "POST", "/features/views/{view}/materialize", Materialize, _materialization, "features",
    summary="Load the latest row per entity into the online store (incremental without start; resumable)",
)  # fmt: skip
GET_MATERIALIZATION: Operation[Materialization] = Operation(
    "get_materialization", "features", "materialization", "viewer", "body", PROJECT,
    "GET", "/features/views/{view}/materialization", ViewPath, _materialization, "features",
)  # fmt: skip

OPERATIONS = (
    PLAN_FEATURES,
    APPLY_FEATURES,
    LIST_FEATURE_DEFINITIONS,
    GET_FEATURE_DEFINITION,
    ONLINE_FEATURES,
    PUSH_FEATURES,
    MATERIALIZE_FEATURES,
    GET_MATERIALIZATION,
)
