"""The feature store over the operation table (`client.features`): definitions as data, online lookups, push
and materialization, the same on the embedded store and against a server."""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopml.api import features as ops
from loopml.domain.features import Materialization, OnlineFeatures, Plan, StoredDefinition
from loopml.errors import InvalidInput

if TYPE_CHECKING:
    from loopml.client.client import Client

Definitions = str | os.PathLike[str] | Sequence[Mapping[str, Any]]
"""A definitions file (`features.py`), or definitions as data: `{"kind", "name", "spec"}` each."""


def definitions_of(source: Definitions) -> tuple[list[dict[str, Any]], bool]:
    """The definitions to send, and whether their sources were checked here. A file is run here and its
    views are checked against their data here (sources are read where the caller runs), so the server gets
    specs that passed `plan`'s checks; data is sent as is, for the server to check."""
    if isinstance(source, str | os.PathLike):
        from loopml.features import definitions_as_data

        return definitions_as_data(source), True
    if isinstance(source, Mapping):
        raise InvalidInput("pass a definitions file's path or a list of definitions ({'kind', 'name', 'spec'})")
    return [dict(item) for item in source], False


def _time(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def columns_of(rows: Any) -> dict[str, list[Any]]:
    """A DataFrame (or dict of columns) as JSON columns: times as ISO text, missing values as null."""
    import pandas as pd

    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(dict(rows))
    columns: dict[str, list[Any]] = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            columns[str(name)] = [None if pd.isna(v) else v.isoformat() for v in column]
        else:
            columns[str(name)] = [None if _missing(v) else _plain(v) for v in column.tolist()]
    return columns


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


class Features:
    """Feature definitions, online values, pushes and materializations (docs/features.md, "Over REST")."""

    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def plan(self, definitions: Definitions, project: str | None = None) -> Plan:
        """What `apply` would change; stores nothing."""
        sent, _checked = definitions_of(definitions)
        return self._backend.call(ops.PLAN_FEATURES, definitions=sent, project=project)

    def apply(self, definitions: Definitions, project: str | None = None) -> Plan:
        """Store the project's definitions (a file's, checked here against its data, or data): a new version
        per changed definition, a deletion for each stored one not sent. Audited."""
        sent, _checked = definitions_of(definitions)
        return self._backend.call(ops.APPLY_FEATURES, definitions=sent, project=project)

    def list(self, project: str | None = None) -> builtins.list[StoredDefinition]:
        return self._backend.call(ops.LIST_FEATURE_DEFINITIONS, project=project)

    def get(self, kind: str, name: str, version: int | None = None, project: str | None = None) -> StoredDefinition:
        return self._backend.call(ops.GET_FEATURE_DEFINITION, kind=kind, name=name, version=version, project=project)

    def online(
        self, features: Sequence[str] | str, entities: Mapping[str, Sequence[Any]], project: str | None = None
    ) -> OnlineFeatures:
        """The online values of `features` ('view:feature' or a feature service) for the entities."""
        wanted: Any = features if isinstance(features, str) else list(features)
        return self._backend.call(
            ops.ONLINE_FEATURES, features=wanted, entities={k: list(v) for k, v in entities.items()}, project=project
        )

    def push(self, view: str, rows: Any, project: str | None = None) -> int:
        """Append rows (a DataFrame with the view's keys, timestamps and features) offline and online."""
        return self._backend.call(ops.PUSH_FEATURES, view=view, rows=columns_of(rows), project=project)

    def materialize(self, view: str, end: Any, start: Any = None, project: str | None = None) -> Materialization:
        """Load the latest row per entity with start <= time < end into the online store (where the server
        runs, reading sources under its LOOPML_FEATURES_SOURCE_DIRS); incremental without `start`."""
        return self._backend.call(
            ops.MATERIALIZE_FEATURES, view=view, end=_time(end), start=_time(start), project=project
        )

    def materialization(self, view: str, project: str | None = None) -> Materialization:
        """The last materialization of `view` (running or done)."""
        return self._backend.call(ops.GET_MATERIALIZATION, view=view, project=project)
