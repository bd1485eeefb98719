"""Checking definitions against their data, and the diff between a definitions file and the stored ones.

Every problem is found at `plan` (before anything is stored) and reported together, each naming the
definition and what to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from loopml.domain.features import DefinitionChange, StoredDefinition
from loopml.errors import InvalidInput, LoopmlError
from loopml.features.definitions import parse_ref
from loopml.features.loader import Loaded
from loopml.features.sources import accepts

SourceSchema = Callable[[dict[str, Any]], dict[str, str] | None]
"""A source spec -> its column names and DuckDB types (None: this source is not checked here)."""


def check(loaded: Sequence[Loaded], schema_of: SourceSchema | None) -> None:
    """Raise InvalidInput listing every problem of the definitions (sources read for their schemas only;
    without `schema_of`, the definitions and their references are checked, not the data)."""
    problems: list[str] = []
    entities = {d.name: d.spec for d in loaded if d.kind == "entity"}
    features: dict[str, set[str]] = {}
    for d in loaded:
        if d.kind != "feature_view":
            continue
        spec = d.spec
        features[d.name] = {name for name, _dtype, _default in spec["schema"]}
        for entity in spec["entities"]:
            if entity not in entities:
                problems.append(f"feature view {d.name!r}: entity {entity!r} is not defined")
        if schema_of is None:
            continue
        try:
            columns = schema_of(spec["source"])
        except LoopmlError as error:
            problems.append(f"feature view {d.name!r}: {error.message}")
            continue
        if columns is None:
            continue
        source = spec["source"]
        where = f"its source ({_describe(source)})"
        for role, column in (("timestamp", source["timestamp"]), ("created", source.get("created"))):
            if column is None:
                continue
            if column not in columns:
                problems.append(f"feature view {d.name!r}: the {role} column {column!r} is not in {where}")
            elif not (accepts("timestamp", columns[column]) or columns[column] == "VARCHAR"):
                problems.append(
                    f"feature view {d.name!r}: the {role} column {column!r} is {columns[column]}, not a timestamp"
                )
        for key in spec["join_keys"]:
            if key not in columns:
                problems.append(f"feature view {d.name!r}: the join key {key!r} is not in {where}")
        for name, dtype, _default in spec["schema"]:
            if name not in columns:
                problems.append(f"feature view {d.name!r}: feature {name!r} is not a column of {where}")
            elif not accepts(dtype, columns[name]):
                held = columns[name]
                problems.append(
                    f"feature view {d.name!r}: feature {name!r} is declared {dtype} but the source holds {held}"
                )
    for d in loaded:
        if d.kind == "on_demand_view":
            features[d.name] = {name for name, _dtype, _default in d.spec["schema"]}
    for d in loaded:
        refs = d.spec["inputs"] if d.kind == "on_demand_view" else d.spec.get("features", [])
        if d.kind not in ("on_demand_view", "feature_service"):
            continue
        for ref in refs:
            view, feature = parse_ref(ref)
            if view not in features:
                problems.append(f"{d.kind.replace('_', ' ')} {d.name!r}: {ref!r} names no feature view")
            elif feature not in features[view]:
                problems.append(f"{d.kind.replace('_', ' ')} {d.name!r}: view {view!r} has no feature {feature!r}")
            elif d.kind == "on_demand_view" and view in {x.name for x in loaded if x.kind == "on_demand_view"}:
                problems.append(f"on-demand view {d.name!r}: its inputs must come from feature views, not {view!r}")
    if problems:
        raise InvalidInput("the definitions have problems:\n  - " + "\n  - ".join(problems))


def _describe(source: dict[str, Any]) -> str:
    if source["type"] == "file":
        return str(source["path"])
    if source["type"] == "dataset":
        return f"dataset {source['digest'][:12]}"
    return "a PostgreSQL query"


def _fields(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key)))


def diff(loaded: Sequence[Loaded], current: Sequence[StoredDefinition]) -> list[DefinitionChange]:
    """What applying `loaded` would change: creations, updates (new versions), deletions, the unchanged."""
    stored = {(d.kind, d.name): d for d in current}
    changes = []
    for d in loaded:
        old = stored.pop((d.kind, d.name), None)  # type: ignore[arg-type]
        if old is None:
            changes.append(DefinitionChange(d.kind, d.name, "create", None))  # type: ignore[arg-type]
        elif old.digest != d.digest:
            changes.append(
                DefinitionChange(d.kind, d.name, "update", old.version, _fields(old.spec, d.spec))  # type: ignore[arg-type]
            )
        else:
            changes.append(DefinitionChange(d.kind, d.name, "unchanged", old.version))  # type: ignore[arg-type]
    for (kind, name), old in sorted(stored.items()):
        changes.append(DefinitionChange(kind, name, "delete", old.version))
    return changes
