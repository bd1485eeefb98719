"""Feature store service: definitions (entities, sources, feature views, on-demand views, feature services),
point-in-time correct training sets, online stores (SQLite, Redis), materialization and push.

Owns `FeatureStore` and the `lm.features.*` functions. Imports the store, the artifact store, the domain,
`loopml.data` and the settings; never the server, the CLI or the client. Importing it is cheap: DuckDB,
pandas and SQLAlchemy load with the first call that needs them.

    import loopml as lm
    from loopml.features import Entity, FeatureView, Field, FileSource

    station = Entity("station", join_keys=["station_id"])
    weather = FeatureView("weather_hourly", entities=[station], ttl="2h",
                          source=FileSource("weather.parquet", timestamp="ts", created="created_at"),
                          schema=[Field("temp", "float"), Field("hum", "float")])
    lm.features.apply("features.py")
    train = lm.features.training_set(labels, ["weather_hourly:temp", "weather_hourly:hum"])
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopml._lazy import lazy_attributes
from loopml.features.definitions import (
    DatasetSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    PostgresSource,
)

if TYPE_CHECKING:
    import pandas as pd

    from loopml.domain.features import FeatureLineage, Materialization, Plan, StoredDefinition
    from loopml.features.online_store import OnlineStore, open_online_store
    from loopml.features.service import FeatureStore, OnlineFeatures, ServingPlan

__all__ = [
    "DatasetSource",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "OnDemandFeatureView",
    "OnlineFeatures",
    "OnlineStore",
    "PostgresSource",
    "ServingPlan",
    "apply",
    "close",
    "definition",
    "definitions_as_data",
    "history",
    "lineage",
    "list_definitions",
    "materialize",
    "online",
    "open_online_store",
    "plan",
    "push",
    "training_set",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        "FeatureStore": "loopml.features.service",
        "OnlineFeatures": "loopml.features.service",
        "OnlineStore": "loopml.features.online_store",
        "ServingPlan": "loopml.features.service",
        "open_online_store": "loopml.features.online_store",
    },
)


def _call() -> tuple[FeatureStore, Any]:
    from loopml.features.embedded import feature_store, local_principal

    return feature_store(), local_principal()


def close() -> None:
    """Close the stores `lm.features.*` opened (the next call opens them again from the settings)."""
    from loopml.features.embedded import reset

    reset()


def plan(path: str | os.PathLike[str], project: str | None = None) -> Plan:
    """What `apply(path)` would change (like `terraform plan`), after checking the definitions against their
    data: a missing column, a join key absent from the source or a type mismatch is an `InvalidInput`."""
    store, principal = _call()
    return store.plan(principal, path, project)


def apply(path: str | os.PathLike[str], project: str | None = None) -> Plan:
    """Store the definitions of the file at `path`: a new version for each one whose definition changed,
    a deletion for each one the file no longer has (refused while a deployment uses it). Audited."""
    store, principal = _call()
    return store.apply(principal, path, project)


def definitions_as_data(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The definitions of the file at `path` as data (`{"kind", "name", "spec"}` each), after `plan`'s checks
    against their data, read here (a logged dataset source is left to the store that knows it)."""
    from loopml.features.loader import load_file
    from loopml.features.offline import connect
    from loopml.features.planning import check
    from loopml.features.sources import describe, locate

    loaded = load_file(path)

    def schema_of(spec: dict[str, Any]) -> dict[str, str] | None:
        if spec["type"] == "dataset":
            return None
        con = connect()
        try:
            return describe(con, locate(spec, lambda digest: digest), "__plan")
        finally:
            con.close()

    check(loaded, schema_of)
    return [{"kind": d.kind, "name": d.name, "spec": d.spec} for d in loaded]


def list_definitions(project: str | None = None) -> list[StoredDefinition]:
    """The current version of every definition."""
    store, principal = _call()
    return store.list(principal, project)


def definition(kind: str, name: str, version: int | None = None, project: str | None = None) -> StoredDefinition:
    """One stored definition (`kind` is entity, feature_view, on_demand_view or feature_service)."""
    store, principal = _call()
    return store.get(principal, kind, name, version, project)


def training_set(
    labels: Any,
    features: Sequence[str] | str,
    timestamp: str | None = None,
    run: Any = None,
    name: str = "training-set",
    project: str | None = None,
) -> pd.DataFrame:
    """The label rows with `features` ('view:feature' references, or a feature service's name) joined
    point-in-time correctly: for each row and view, the latest feature row with timestamp <= the label's,
    within the view's TTL. With `run` (an active run or a run id) the result is logged to it as a training
    dataset whose lineage names the feature view versions."""
    store, principal = _call()
    run_id = None if run is None else str(getattr(run, "id", run))
    return store.training_set(principal, labels, features, timestamp, project, run_id, name)


def history(view: str, start: Any = None, end: Any = None, project: str | None = None) -> pd.DataFrame:
    """Every row of `view` with start <= timestamp < end, without labels (entity-less retrieval)."""
    store, principal = _call()
    return store.history(principal, view, start, end, project)


def lineage(dataset_digest: str, project: str | None = None) -> FeatureLineage:
    """The (view, version) pairs a logged training set was joined from."""
    store, principal = _call()
    return store.lineage(principal, dataset_digest, project)


def materialize(
    view: str,
    end: Any,
    start: Any = None,
    project: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Materialization:
    """Load the latest row per entity with start <= timestamp < end into the online store; incremental
    (from the end of the last run) without `start`, and resumed where it stopped if a run was killed."""
    store, principal = _call()
    return store.materialize(principal, view, end, start, project, progress)


def online(
    features: Sequence[str] | str, entities: Mapping[str, Sequence[Any]], project: str | None = None
) -> OnlineFeatures:
    """The online values of `features` for the given entities (join key -> values), with each view's age."""
    store, principal = _call()
    return store.online(principal, features, entities, project)


def push(view: str, rows: Any, project: str | None = None) -> int:
    """Append rows (a DataFrame with the view's keys, timestamps and features) offline and online."""
    store, principal = _call()
    return store.push(principal, view, rows, project)
