"""Loading definitions from a Python file, the way `loopml features plan|apply` reads them.

The file is run as a script; every Entity, FeatureView, OnDemandFeatureView and FeatureService it defines at
top level (and every entity a view names) is a definition. Relative FileSource paths are resolved against the
file's directory, so the stored definition names the same data wherever it is read from.
"""

from __future__ import annotations

import os
import runpy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loopml.errors import InvalidInput, LoopmlError
from loopml.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    FileSource,
    OnDemandFeatureView,
    digest,
)


@dataclass(frozen=True)
class Loaded:
    """One definition as read from the file: its canonical spec and the digest of that spec."""

    kind: str
    name: str
    spec: dict[str, Any]
    digest: str
    definition: Definition


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
