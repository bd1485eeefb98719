"""Loading definitions from a Python file, the way `loopml features plan|apply` reads them.

The file is run as a script; every Entity, FeatureView, OnDemandFeatureView and FeatureService it defines at
top level (and every entity a view names) is a definition. Relative FileSource paths are resolved against the
file's directory, so the stored definition names the same data wherever it is read from.
"""

from __future__ import annotations

import os
import re
import runpy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from loopml.errors import InvalidInput, LoopmlError
from loopml.features.definitions import (
    DatasetSource,
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    PostgresSource,
    check_identifier,
    digest,
    parse_ref,
)


@dataclass(frozen=True)
class Loaded:
    """One definition as read from the file: its canonical spec and the digest of that spec."""

    kind: str
    name: str
    spec: dict[str, Any]
    digest: str
    definition: Definition | None
    """None for an on-demand view sent as data (its function is source text only)."""


def _absolute(view: FeatureView, base: Path) -> FeatureView:
    source = view.source
    if isinstance(source, FileSource) and not os.path.isabs(source.path) and "://" not in source.path:
        return replace(view, source=replace(source, path=str((base / source.path).resolve())))
    return view


def collect(objects: list[object], base: Path) -> list[Loaded]:
    """The definitions among `objects` (with the entities their views name), checked for clashing names."""
    found: dict[tuple[str, str], Definition] = {}
    for item in objects:
        if isinstance(item, FeatureView):
            item = _absolute(item, base)
            for entity in item.entities:
                _add(found, entity)
        if isinstance(item, Entity | FeatureView | OnDemandFeatureView | FeatureService):
            _add(found, item)
    views = {name for kind, name in found if kind == "feature_view"}
    on_demand = {name for kind, name in found if kind == "on_demand_view"}
    if views & on_demand:
        raise InvalidInput(
            f"{sorted(views & on_demand)} name both a feature view and an on-demand view; features are referred "
            "to as 'view:feature', so every view name must be unique"
        )
    loaded = []
    for (kind, name), definition in sorted(found.items()):
        spec = definition.spec()
        loaded.append(Loaded(kind, name, spec, digest(kind, name, spec), definition))
    return loaded


def _add(found: dict[tuple[str, str], Definition], item: Definition) -> None:
    key = (item.kind, item.name)
    known = found.get(key)
    if known is not None and known != item and known.spec() != item.spec():
        raise InvalidInput(
            f"two different {item.kind.replace('_', ' ')}s are named {item.name!r}; definition names must be unique"
        )
    found[key] = item


def load_file(path: str | os.PathLike[str]) -> list[Loaded]:
    """Run the definitions file at `path` and collect its definitions."""
    file = Path(path)
    if not file.is_file() or file.suffix != ".py":
        raise InvalidInput(f"{str(file)!r} is not a Python file of feature definitions (features.py)")
    try:
        namespace = runpy.run_path(str(file), run_name="loopml_features_definitions")
    except LoopmlError as error:
        raise type(error)(f"{file.name}: {error.message}") from None
    except SyntaxError as error:
        raise InvalidInput(f"{file.name}, line {error.lineno}: {error.msg}") from None
    except Exception as error:  # the user's file: report, never crash
        raise InvalidInput(f"{file.name} failed to run: {type(error).__name__}: {error}") from None
    objects = [value for name, value in namespace.items() if not name.startswith("__")]
    loaded = collect(objects, file.parent.resolve())
    if not loaded:
        raise InvalidInput(f"{file.name} defines no Entity, FeatureView, OnDemandFeatureView or FeatureService")
    return loaded


_SPEC_KEYS = {
    "entity": {"join_keys", "description"},
    "feature_view": {"entities", "join_keys", "source", "schema", "ttl_seconds", "online", "description"},
    "on_demand_view": {"inputs", "function", "function_name", "schema"},
    "feature_service": {"features", "description"},
}
_SOURCE_KEYS = {
    "file": {"type", "path", "timestamp", "created"},
    "postgres": {"type", "query", "timestamp", "created", "url_env"},
    "dataset": {"type", "digest", "timestamp", "created"},
}


def from_specs(items: Sequence[Mapping[str, Any]]) -> list[Loaded]:
    """Definitions sent as data (`{"kind", "name", "spec"}`, the canonical specs `apply` stores, e.g. from
    `loopml features show` or a client that loaded a definitions file): each is rebuilt through the same
    constructors a definitions file uses, so a spec passes the same checks, and its digest is recomputed.
    An on-demand view's function stays source text: it is compiled to check its syntax, never run here."""
    entities: dict[str, Entity] = {}
    rebuilt: list[Definition | Loaded] = []
    problems: list[str] = []
    ordered = sorted(items, key=lambda item: item.get("kind") != "entity")  # entities first: views name them
    for item in ordered:
        kind, name, spec = item.get("kind"), item.get("name"), item.get("spec")
        what = f"{str(kind).replace('_', ' ')} {name!r}"
        try:
            if kind not in _SPEC_KEYS:
                raise InvalidInput(f"kind must be one of {', '.join(_SPEC_KEYS)}, got {kind!r}")
            if not isinstance(spec, Mapping):
                raise InvalidInput("spec must be an object")
            unknown = set(spec) - _SPEC_KEYS[kind]
            if unknown:
                raise InvalidInput(f"unknown spec fields {sorted(unknown)}; the fields are {sorted(_SPEC_KEYS[kind])}")
            definition = _rebuild(kind, name, spec, entities)
        except InvalidInput as error:
            problems.append(f"{what}: {error.message}")
            continue
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as error:
            problems.append(f"{what}: malformed spec ({type(error).__name__}: {error})")
            continue
        if isinstance(definition, Entity):
            entities[definition.name] = definition
        rebuilt.append(definition)
    if problems:
        raise InvalidInput("the definitions have problems:\n  - " + "\n  - ".join(problems))
    found: dict[tuple[str, str], Loaded] = {}
    objects: list[object] = []
    for definition in rebuilt:
        if isinstance(definition, Loaded):
            if (definition.kind, definition.name) in found:
                raise InvalidInput(f"two on-demand views are named {definition.name!r}; names must be unique")
            found[(definition.kind, definition.name)] = definition
        else:
            objects.append(definition)
    loaded = collect(objects, Path("/"))
    clash = {name for kind, name in found} & {d.name for d in loaded if d.kind == "feature_view"}
    if clash:
        raise InvalidInput(f"{sorted(clash)} name both a feature view and an on-demand view; view names must be unique")
    everything = loaded + list(found.values())
    if not everything:
        raise InvalidInput("send at least one definition")
    return sorted(everything, key=lambda d: (d.kind, d.name))


def _fields(schema: Any) -> list[Field]:
    if not isinstance(schema, list):
        raise InvalidInput("schema must be a list of [name, dtype, default]")
    fields = []
    for entry in schema:
        if not isinstance(entry, list) or len(entry) != 3:
            raise InvalidInput(f"a schema entry is [name, dtype, default], got {entry!r}")
        fields.append(Field(entry[0], entry[1], entry[2]))
    return fields


def _source(spec: Any) -> FileSource | PostgresSource | DatasetSource:
    if not isinstance(spec, Mapping) or spec.get("type") not in _SOURCE_KEYS:
        raise InvalidInput(f"source must be an object whose type is file, postgres or dataset, got {spec!r}")
    unknown = set(spec) - _SOURCE_KEYS[spec["type"]]
    if unknown:
        raise InvalidInput(f"unknown source fields {sorted(unknown)}")
    if spec["type"] == "file":
        path = spec.get("path")
        if not isinstance(path, str) or not (os.path.isabs(path) or "://" in path):
            raise InvalidInput(f"a FileSource sent as data needs an absolute path, got {path!r}")
        return FileSource(path, spec.get("timestamp"), spec.get("created"))  # type: ignore[arg-type]
    if spec["type"] == "postgres":
        return PostgresSource(
            spec.get("query"),  # type: ignore[arg-type]
            spec.get("timestamp"),  # type: ignore[arg-type]
            spec.get("created"),
            spec.get("url_env", "LOOPML_FEATURES_DATABASE_URL"),
        )
    return DatasetSource(spec.get("digest"), spec.get("timestamp"), spec.get("created"))  # type: ignore[arg-type]


def _rebuild(kind: str, name: Any, spec: Mapping[str, Any], entities: Mapping[str, Entity]) -> Definition | Loaded:
    if kind == "entity":
        return Entity(name, list(spec.get("join_keys") or []), str(spec.get("description", "")))
    if kind == "feature_view":
        names = spec.get("entities")
        if not isinstance(names, list) or not names:
            raise InvalidInput("entities must be a non-empty list of entity names")
        missing = [e for e in names if e not in entities]
        if missing:
            raise InvalidInput(f"entities {missing} are not among the definitions sent")
        ttl = spec.get("ttl_seconds")
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0):
            raise InvalidInput(f"ttl_seconds must be a positive integer or null, got {ttl!r}")
        view = FeatureView(
            name,
            [entities[e] for e in names],
            _source(spec.get("source")),
            _fields(spec.get("schema")),
            None if ttl is None else timedelta(seconds=ttl),
            bool(spec.get("online", True)),
            str(spec.get("description", "")),
        )
        if "join_keys" in spec and spec["join_keys"] != view.join_keys:
            raise InvalidInput(f"join_keys {spec['join_keys']!r} differ from its entities' keys {view.join_keys}")
        return view
    if kind == "on_demand_view":
        check_identifier("on-demand view", name)
        inputs = spec.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise InvalidInput("inputs must be a non-empty list of 'view:feature'")
        for ref in inputs:
            parse_ref(ref)
        source = spec.get("function")
        function_name = check_identifier("function", spec.get("function_name"))
        if not isinstance(source, str) or not source.strip():
            raise InvalidInput("function must be the Python source of the function")
        try:
            compile(source, f"<on-demand view {name}>", "exec")
        except SyntaxError as error:
            raise InvalidInput(f"function, line {error.lineno}: {error.msg}") from None
        if not re.search(rf"^def\s+{re.escape(function_name)}\s*\(", source, re.MULTILINE):
            raise InvalidInput(f"function does not define {function_name!r} at top level")
        schema = [[f.name, f.dtype, f.default] for f in _fields(spec.get("schema"))]
        canonical = {"inputs": list(inputs), "function": source, "function_name": function_name, "schema": schema}
        return Loaded("on_demand_view", name, canonical, digest("on_demand_view", name, canonical), None)
    features = spec.get("features")
    if not isinstance(features, list):
        raise InvalidInput("features must be a list of 'view:feature'")
    return FeatureService(name, features, str(spec.get("description", "")))
