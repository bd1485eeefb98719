"""`FeatureStore`: the feature store's behaviour over the metadata store, the artifact store and an online
store. Every method takes the acting `Principal` first, like the other services."""

from __future__ import annotations

import builtins
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from loopml.artifacts import ArtifactStore
from loopml.domain import DatasetInput, Principal, Project, Role
from loopml.domain.features import (
    DefinitionChange,
    FeatureLineage,
    Materialization,
    OnlineFeatures,
    Plan,
    StoredDefinition,
)
from loopml.domain.validation import check_name
from loopml.errors import InvalidInput, NotFound, PermissionDenied, RunNotFound, UserCodeError
from loopml.features import offline, planning, sources
from loopml.features.definitions import check_identifier, parse_ref
from loopml.features.loader import Loaded, from_specs, load_file
from loopml.features.online_store import OnlineStore
from loopml.store import MetadataStore, Unit

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa

NO_CREATED = -(2**53) + 1
"""Stands for a missing created time online: lower than any real one, exact in a Lua number."""
BUCKETS = 16
"""Materialization writes entities in this many buckets, recording each one done (what a resume skips)."""
CACHE_SECONDS = 5.0
"""How long online lookups reuse the definitions they read (an apply in this process refreshes at once)."""


@dataclass(frozen=True)
class ServingPlan:
    """What serving a feature service takes and gives: entity keys in, feature columns out."""

    join_keys: tuple[str, ...]
    outputs: tuple[str, ...]
    views: tuple[str, ...]


@dataclass(frozen=True)
class _Request:
    """Feature references resolved against the current definitions."""

    views: dict[str, tuple[StoredDefinition, list[str]]]
    on_demand: list[tuple[StoredDefinition, list[str]]]
    hidden: set[str]
    outputs: list[str]


def _key_bytes(values: Sequence[Any]) -> bytes:
    return orjson.dumps(list(values))


class FeatureStore:
    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        online_store: Callable[[], OnlineStore],
        cache_dir: Path,
        default_project: str = "default",
        source_dirs: Sequence[Path] | None = None,
        run_user_code: bool = True,
    ) -> None:
        """`source_dirs` None reads sources wherever they are (the embedded store: the caller's own files);
        a server passes the directories it may read files and datasets from, and then reads PostgreSQL only
        through URLs in `LOOPML_FEATURES_*` variables. `run_user_code` False refuses on-demand views (the
        control plane runs no user code; replicas and the embedded SDK do)."""
        self.store = store
        self.source_dirs = None if source_dirs is None else tuple(Path(d).resolve() for d in source_dirs)
        self.run_user_code = run_user_code
        self.artifacts = artifacts
        self.default_project = default_project
        self._online_factory = online_store
        self._online: OnlineStore | None = None
        self._cache_dir = cache_dir
        self._definitions: dict[str, tuple[float, dict[tuple[str, str], StoredDefinition]]] = {}
        self._lock = threading.Lock()

    # -- access ------------------------------------------------------------------------------------

    def _project_name(self, principal: Principal, project: str | None) -> str:
        name = project if project is not None else principal.project or self.default_project
        check_name("project", name)
        if not principal.can_see(name):
            raise PermissionDenied(
                f"the token in use is scoped to project {principal.project!r} and cannot reach {name!r}"
            )
        return name

    def _project(self, unit: Unit, principal: Principal, project: str | None, create: bool = False) -> Project:
        name = self._project_name(principal, project)
        return unit.projects.get_or_create(name) if create else unit.projects.get(name)

    def online_store(self) -> OnlineStore:
        with self._lock:
            if self._online is None:
                self._online = self._online_factory()
            return self._online

    def close(self) -> None:
        with self._lock:
            if self._online is not None:
                self._online.close()
                self._online = None

    # -- definitions -------------------------------------------------------------------------------

    def _schema_of(self, unit: Unit) -> planning.SourceSchema:
        def schema_of(source: dict[str, Any]) -> dict[str, str]:
            self._guard(source)
            con = offline.connect()
            try:
                files = sources.locate(source, self._dataset_path(unit))
                return sources.describe(con, files, "__plan")
            finally:
                con.close()

        return schema_of

    def _dataset_path(self, unit: Unit) -> sources.DatasetResolver:
        def resolve(digest: str) -> str:
            dataset = unit.datasets.get(digest)
            if dataset.source in ("", "memory"):
                raise InvalidInput(
                    f"dataset {digest[:12]} was logged from memory, so loopml knows no file to read it from; "
                    "log it from a CSV or Parquet file"
                )
            if self.source_dirs is not None:
                self._guard_path(dataset.source, f"the file of dataset {digest[:12]}")
            return dataset.source

        return resolve

    def _guard(self, source: Mapping[str, Any]) -> None:
        """On a server, refuse a source outside what it was configured to read."""
        if self.source_dirs is None:
            return
        if source["type"] == "file":
            self._guard_path(str(source["path"]), "FileSource path")
        elif source["type"] == "postgres" and not str(source.get("url_env", "")).startswith("LOOPML_FEATURES_"):
            raise InvalidInput(
                f"on a server, a PostgresSource reads its URL from a LOOPML_FEATURES_* variable, not "
                f"${source.get('url_env')}"
            )

    def _guard_path(self, path: str, what: str) -> None:
        assert self.source_dirs is not None
        if "://" in path:
            raise InvalidInput(f"{what} {path!r}: the server reads local files only")
        resolved = Path(path.split("*")[0].split("?")[0].split("[")[0]).resolve()
        if not any(resolved == d or d in resolved.parents for d in self.source_dirs):
            allowed = ", ".join(str(d) for d in self.source_dirs) or "none (LOOPML_FEATURES_SOURCE_DIRS is not set)"
            raise InvalidInput(
                f"{what} {path!r} is outside the directories the server reads feature sources from: {allowed}"
            )

    def plan(self, principal: Principal, path: str | os.PathLike[str], project: str | None = None) -> Plan:
        """What `apply` would change, after checking every definition against its data."""
        loaded = load_file(path)
        with self.store.read() as unit:
            return self._plan(unit, principal, loaded, project)

    def _plan(
        self, unit: Unit, principal: Principal, loaded: list[Loaded], project: str | None, read_sources: bool = True
    ) -> Plan:
        name = self._project_name(principal, project)
        planning.check(loaded, self._schema_of(unit) if read_sources else None)
        try:
            current = unit.features.current(unit.projects.get(name))
        except NotFound:
            current = []
        changes = planning.diff(loaded, current)
        refused = []
        if current:
            owner = unit.projects.get(name)
            for change in changes:
                if change.action == "delete" and change.kind == "feature_view":
                    using = unit.features.deployments_using(owner, change.name)
                    if using:
                        refused.append(f"feature view {change.name!r} is used by deployment(s) {', '.join(using)}")
                elif change.action == "delete" and change.kind == "feature_service":
                    using = unit.features.deployments_serving(owner, change.name)
                    if using:
                        refused.append(f"feature service {change.name!r} is served by deployment(s) {', '.join(using)}")
        if refused:
            raise InvalidInput(
                "the plan deletes definitions in use; keep them in the file (or stop the deployments first):\n  - "
                + "\n  - ".join(refused)
            )
        return Plan(name, tuple(changes))

    def apply(self, principal: Principal, path: str | os.PathLike[str], project: str | None = None) -> Plan:
        """Store a new version of every changed definition, delete the ones no longer in the file (audited)."""
        principal.require(Role.EDITOR)
        return self._apply(principal, load_file(path), project, read_sources=True)

    def plan_definitions(
        self,
        principal: Principal,
        definitions: Sequence[Mapping[str, Any]],
        project: str | None = None,
        check_sources: bool = False,
    ) -> Plan:
        """What `apply_definitions` would change; stores nothing."""
        loaded = from_specs(definitions)
        with self.store.read() as unit:
            return self._plan(unit, principal, loaded, project, read_sources=check_sources)

    def apply_definitions(
        self,
        principal: Principal,
        definitions: Sequence[Mapping[str, Any]],
        project: str | None = None,
        check_sources: bool = False,
    ) -> Plan:
        """Definitions sent as data (`{"kind", "name", "spec"}` each): the whole set of the project, as a
        definitions file would hold it (a stored definition not sent is deleted). The specs pass the
        constructors' checks and the references between definitions are checked; the sources are read only
        with `check_sources` (the HTTP client checks them where it runs, before sending)."""
        principal.require(Role.EDITOR)
        return self._apply(principal, from_specs(definitions), project, read_sources=check_sources)

    def _apply(self, principal: Principal, loaded: list[Loaded], project: str | None, read_sources: bool) -> Plan:
        by_key = {(d.kind, d.name): d for d in loaded}
        with self.store.write(principal.actor) as unit:
            result = self._plan(unit, principal, loaded, project, read_sources)
            owner = unit.projects.get_or_create(result.project)
            changes: list[DefinitionChange] = []
            for change in result.changes:
                if change.action in ("create", "update"):
                    d = by_key[(change.kind, change.name)]
                    saved = unit.features.save(owner, change.kind, change.name, d.digest, d.spec, principal.actor)
                    changes.append(DefinitionChange(change.kind, change.name, change.action, saved.version))
                elif change.action == "delete":
                    unit.features.delete(owner, change.kind, change.name)
                    changes.append(change)
                else:
                    changes.append(change)
        self._definitions.pop(result.project, None)
        return Plan(result.project, tuple(changes))

    def list(self, principal: Principal, project: str | None = None) -> builtins.list[StoredDefinition]:
        with self.store.read() as unit:
            try:
                return unit.features.current(self._project(unit, principal, project))
            except NotFound:
                return []

    def get(
        self, principal: Principal, kind: str, name: str, version: int | None = None, project: str | None = None
    ) -> StoredDefinition:
        if kind not in ("entity", "feature_view", "on_demand_view", "feature_service"):
            raise InvalidInput(f"kind must be entity, feature_view, on_demand_view or feature_service, got {kind!r}")
        with self.store.read() as unit:
            return unit.features.get(self._project(unit, principal, project), kind, name, version)  # type: ignore[arg-type]

    def lineage(self, principal: Principal, digest: str, project: str | None = None) -> FeatureLineage:
        """The feature view versions a logged training set was joined from."""
        with self.store.read() as unit:
            return unit.features.lineage(self._project(unit, principal, project), digest)

    def _current(
        self, principal: Principal, project: str | None
    ) -> tuple[str, dict[tuple[str, str], StoredDefinition]]:
        name = self._project_name(principal, project)
        cached = self._definitions.get(name)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return name, cached[1]
        with self.store.read() as unit:
            try:
                current = unit.features.current(unit.projects.get(name))
            except NotFound:
                current = []
        table: dict[tuple[str, str], StoredDefinition] = {(d.kind, d.name): d for d in current}
        self._definitions[name] = (time.monotonic(), table)
        return name, table

    def _resolve(self, current: Mapping[tuple[str, str], StoredDefinition], features: Sequence[str] | str) -> _Request:
        if isinstance(features, str):
            service = current.get(("feature_service", features))
            if service is None:
                raise NotFound(f"feature service {features!r} does not exist (apply the definitions first)")
            refs = list(service.spec["features"])
        else:
            refs = list(features)
        if not refs:
            raise InvalidInput("ask for at least one feature ('view:feature')")
        views: dict[str, tuple[StoredDefinition, list[str]]] = {}
        on_demand: dict[str, tuple[StoredDefinition, list[str]]] = {}
        hidden: set[str] = set()
        outputs: list[str] = []

        def want(view_name: str, feature: str, visible: bool) -> None:
            view = current.get(("feature_view", view_name))
            if view is None:
                raise NotFound(f"feature view {view_name!r} does not exist (apply the definitions first)")
            if feature not in {f for f, _t, _d in view.spec["schema"]}:
                raise NotFound(f"feature view {view_name!r} has no feature {feature!r}")
            chosen = views.setdefault(view_name, (view, []))[1]
            if feature not in chosen:
                chosen.append(feature)
                if not visible:
                    hidden.add(feature)
            elif visible:
                hidden.discard(feature)

        for ref in refs:
            view_name, feature = parse_ref(ref)
            if ("on_demand_view", view_name) in current:
                odv = current[("on_demand_view", view_name)]
                if feature not in {f for f, _t, _d in odv.spec["schema"]}:
                    raise NotFound(f"on-demand view {view_name!r} has no feature {feature!r}")
                on_demand.setdefault(view_name, (odv, []))[1].append(feature)
                for source_ref in odv.spec["inputs"]:
                    want(*parse_ref(source_ref), visible=False)
            else:
                want(view_name, feature, visible=True)
            if feature in outputs:
                raise InvalidInput(f"feature {feature!r} is asked for twice (from different views); ask for one")
            outputs.append(feature)
        return _Request(views, list(on_demand.values()), hidden - set(outputs), outputs)

    # -- offline -----------------------------------------------------------------------------------

    def _pushed_files(self, unit: Unit, project: Project, view: str) -> builtins.list[str]:
        files = []
        for digest in unit.features.pushes(project, view):
            local = self._cache_dir / "pushed" / f"{digest}.parquet"
            if not local.is_file():
                self.artifacts.get_file(digest, local)
            files.append(str(local))
        return files

    def _register(self, con: duckdb.DuckDBPyConnection, unit: Unit, project: Project, view: StoredDefinition) -> str:
        alias = f"__view_{view.name}"
        self._guard(view.spec["source"])
        files = sources.locate(
            view.spec["source"], self._dataset_path(unit), self._pushed_files(unit, project, view.name)
        )
        sources.register_view(con, {"spec": view.spec}, files, alias)
        return alias

    def training_set(
        self,
        principal: Principal,
        labels: Any,
        features: Sequence[str] | str,
        timestamp: str | None = None,
        project: str | None = None,
        run_id: str | None = None,
        name: str = "training-set",
    ) -> pd.DataFrame:
        """The label rows with their features joined point-in-time correctly; logged to `run_id` (as a
        training dataset with lineage to the feature view versions) when given."""
        import pandas as pd

        table = _as_table(labels)
        timestamp = timestamp or _label_timestamp(table)
        project_name, current = self._current(principal, project)
        request = self._resolve(current, features)
        con = offline.connect()
        try:
            with self.store.read() as unit:
                owner = unit.projects.get(project_name)
                joins = [
                    offline.JoinView(
                        alias=self._register(con, unit, owner, view),
                        name=view.name,
                        join_keys=tuple(view.spec["join_keys"]),
                        features=tuple(chosen),
                        outputs=tuple(chosen),
                        ttl_seconds=view.spec["ttl_seconds"],
                    )
                    for view, chosen in request.views.values()
                ]
            joined = offline.point_in_time_join(con, table, timestamp, joins)
        finally:
            con.close()
        frame = joined.to_pandas()
        frame = _apply_on_demand(frame, request)
        frame = pd.DataFrame(frame[[*table.column_names, *request.outputs]])
        if run_id is not None:
            self._log_training_set(principal, frame, run_id, name, project_name, request)
        return frame

    def _log_training_set(
        self, principal: Principal, frame: pd.DataFrame, run_id: str, name: str, project: str, request: _Request
    ) -> None:
        from loopml.data import content_digest

        principal.require(Role.EDITOR)
        check_name("dataset", name)
        digest = content_digest(frame)
        views = sorted((view.name, view.version) for view, _chosen in request.views.values())
        schema = tuple((str(c), str(t)) for c, t in frame.dtypes.items())
        source = "features:" + ",".join(f"{v}@{n}" for v, n in views)
        with self.store.write(principal.actor) as unit:
            try:
                if not principal.can_see(unit.runs.project_of(run_id)):
                    raise RunNotFound(f"run {run_id!r} does not exist")
            except RunNotFound:
                raise RunNotFound(f"run {run_id!r} does not exist") from None
            unit.datasets.link(run_id, DatasetInput(name, digest, schema, len(frame), source[:4096], "training"))
            unit.features.link_training_set(unit.projects.get(project), digest, views)

    def history(
        self,
        principal: Principal,
        view: str,
        start: Any = None,
        end: Any = None,
        project: str | None = None,
    ) -> pd.DataFrame:
        """Entity-less retrieval: every row of `view` with start <= timestamp < end (deduplicated)."""
        project_name, current = self._current(principal, project)
        stored = current.get(("feature_view", view))
        if stored is None:
            raise NotFound(f"feature view {view!r} does not exist (apply the definitions first)")
        features = tuple(f for f, _t, _d in stored.spec["schema"])
        con = offline.connect()
        try:
            with self.store.read() as unit:
                alias = self._register(con, unit, unit.projects.get(project_name), stored)
            spec = offline.JoinView(alias, view, tuple(stored.spec["join_keys"]), features, features, None)
            frame: pd.DataFrame = offline.history(con, spec, _micros(start, "start"), _micros(end, "end")).to_pandas()
            return frame
        finally:
            con.close()

    # -- online ------------------------------------------------------------------------------------

    def materialize(
        self,
        principal: Principal,
        view: str,
        end: Any,
        start: Any = None,
        project: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Materialization:
        """Write the latest row per entity with start <= timestamp < end into the online store.

        Without `start`, a view materialized before continues from where the last finished run ended
        (incremental); the first run takes everything before `end`. A run that was killed resumes at its
        first bucket not written; `progress(done, total)` is called after each bucket."""
        principal.require(Role.EDITOR)
        end_us = _micros(end, "end")
        start_us = _micros(start, "start")
        assert end_us is not None
        project_name, current = self._current(principal, project)
        stored = current.get(("feature_view", view))
        if stored is None:
            raise NotFound(f"feature view {view!r} does not exist (apply the definitions first)")
        online = self.online_store()
        with self.store.write(principal.actor) as unit:
            owner = unit.projects.get(project_name)
            job, watermark = unit.features.materialization(owner, view, online.name)
            if start_us is None:
                start_us = watermark * 1000 if watermark is not None else -(2**62)
            if start_us >= end_us:
                raise InvalidInput(
                    f"nothing to materialize: start ({_show(start_us)}) is not before end ({_show(end_us)})"
                )
            start_ms, end_ms = _ms(start_us), _ms(end_us)
            resume = (
                job is not None
                and not job.finished
                and (job.start_ms, job.end_ms, job.version) == (start_ms, end_ms, stored.version)
            )
            if not resume:
                job = Materialization(
                    project_name, view, stored.version, online.name, start_ms, end_ms, BUCKETS, 0, 0, "running", 0
                )
                unit.features.save_materialization(owner, job, watermark)
        assert job is not None
        con = offline.connect()
        try:
            with self.store.read() as unit:
                alias = self._register(con, unit, unit.projects.get(project_name), stored)
            latest = _latest_per_entity(con, alias, stored, job.start_ms * 1000, job.end_ms * 1000)
            keys = stored.spec["join_keys"]
            features = [f for f, _t, _d in stored.spec["schema"]]
            namespace = f"{project_name}/{view}"
            if progress is not None:
                progress(job.done_buckets, job.buckets)
            for bucket in range(job.done_buckets, job.buckets):
                rows = con.sql(f"SELECT * FROM {latest} WHERE __bucket = {bucket}").to_arrow_table()
                _write_online(online, namespace, rows, keys, features)
                job = Materialization(
                    project_name, view, job.version, job.store, job.start_ms, job.end_ms, job.buckets,
                    bucket + 1, job.rows + rows.num_rows, "running", 0,
                )  # fmt: skip
                with self.store.write(principal.actor) as unit:
                    unit.features.save_materialization(unit.projects.get(project_name), job, watermark)
                if progress is not None:
                    progress(bucket + 1, job.buckets)
        finally:
            con.close()
        done = Materialization(
            project_name, view, job.version, job.store, job.start_ms, job.end_ms, job.buckets,
            job.buckets, job.rows, "done", 0,
        )  # fmt: skip
        with self.store.write(principal.actor) as unit:
            owner = unit.projects.get(project_name)
            _old, previous = unit.features.materialization(owner, view, online.name)
            unit.features.save_materialization(owner, done, max(job.end_ms, previous or job.end_ms))
        return done

    def serving_plan(
        self, principal: Principal, features: Sequence[str] | str, project: str | None = None
    ) -> ServingPlan:
        """What a replica needs to serve `features` (a feature service): the entity keys a request must carry,
        the feature columns it gets, and the views read."""
        _project_name, current = self._current(principal, project)
        request = self._resolve(current, features)
        keys: list[str] = []
        for view, _chosen in request.views.values():
            keys.extend(k for k in view.spec["join_keys"] if k not in keys)
        views = tuple(view.name for view, _chosen in request.views.values())
        return ServingPlan(tuple(keys), tuple(request.outputs), views)

    def materialization(self, principal: Principal, view: str, project: str | None = None) -> Materialization:
        """The last materialization of `view` into this store's online store (running, or done)."""
        project_name, current = self._current(principal, project)
        if ("feature_view", view) not in current:
            raise NotFound(f"feature view {view!r} does not exist (apply the definitions first)")
        with self.store.read() as unit:
            job, _watermark = unit.features.materialization(
                unit.projects.get(project_name), view, self.online_store().name
            )
        if job is None:
            raise NotFound(f"feature view {view!r} was never materialized into {self.online_store().name}")
        return job

    def online(
        self,
        principal: Principal,
        features: Sequence[str] | str,
        entities: Mapping[str, Sequence[Any]],
        project: str | None = None,
        expire: bool = False,
    ) -> OnlineFeatures:
        """The latest materialized (or pushed) values of `features` for each entity, with their age. With
        `expire` (serving), a value older than its view's TTL counts as missing: the view's declared default,
        age None, as the point-in-time join of training sets treats it."""
        project_name, current = self._current(principal, project)
        request = self._resolve(current, features)
        if request.on_demand and not self.run_user_code:
            names = ", ".join(odv.name for odv, _chosen in request.on_demand)
            raise InvalidInput(
                f"on-demand views ({names}) run user code, which the control plane never runs: ask for their "
                "input features here and compute them where the model runs (lm.features embedded, or a serving "
                "replica with a feature service)"
            )
        lengths = {len(v) for v in entities.values()} if entities else {0}
        if len(lengths) != 1 or 0 in lengths:
            raise InvalidInput("entities must map each join key to a non-empty list, all of the same length")
        count = lengths.pop()
        lookups = []
        for view, _chosen in request.views.values():
            keys = view.spec["join_keys"]
            missing = [k for k in keys if k not in entities]
            if missing:
                raise InvalidInput(f"feature view {view.name!r} needs the entity keys {missing}")
            columns = [entities[k] for k in keys]
            lookups.append((f"{project_name}/{view.name}", [_key_bytes(row) for row in zip(*columns, strict=True)]))
        found = self.online_store().read(lookups)
        now_us = time.time_ns() // 1000
        values: dict[str, list[Any]] = {k: list(v) for k, v in entities.items()}
        ages: dict[str, list[float | None]] = {}
        for (view, chosen), rows in zip(request.views.values(), found, strict=True):
            ttl = view.spec["ttl_seconds"]
            if expire and ttl is not None:
                oldest = now_us - ttl * 1_000_000
                rows = [None if row is None or row[0] < oldest else row for row in rows]
            defaults = {f: d for f, _t, d in view.spec["schema"]}
            decoded = [None if row is None else orjson.loads(row[1]) for row in rows]
            for feature in chosen:
                values[feature] = [defaults[feature] if d is None else d.get(feature) for d in decoded]
            ages[view.name] = [None if row is None else (now_us - row[0]) / 1e6 for row in rows]
        if request.on_demand:
            import pandas as pd

            frame = _apply_on_demand(pd.DataFrame(values), request)
            frame = frame.astype(object).where(frame.notna(), None)
            values = {c: frame[c].tolist() for c in frame.columns}
        for feature in request.hidden:
            values.pop(feature, None)
        assert all(len(v) == count for v in values.values())
        return OnlineFeatures(values, ages)

    def push(self, principal: Principal, view: str, rows: Any, project: str | None = None) -> int:
        """Append rows to `view`: stored offline (read by training sets from then on) and written online."""
        import pyarrow.parquet as pq

        principal.require(Role.EDITOR)
        project_name, current = self._current(principal, project)
        stored = current.get(("feature_view", view))
        if stored is None:
            raise NotFound(f"feature view {view!r} does not exist (apply the definitions first)")
        spec = stored.spec
        source = spec["source"]
        if isinstance(rows, Mapping):
            rows = _times_parsed(rows, [source["timestamp"], *([source["created"]] if source.get("created") else [])])
        table = _as_table(rows)
        if table.num_rows == 0:
            raise InvalidInput("push takes at least one row")
        wanted = [*spec["join_keys"], source["timestamp"], *([source["created"]] if source.get("created") else [])]
        wanted += [f for f, _t, _d in spec["schema"]]
        missing = [c for c in wanted if c not in table.column_names]
        if missing:
            raise InvalidInput(f"the rows pushed to {view!r} lack the columns {missing}")
        table = table.select(wanted)
        con = offline.connect()
        try:
            con.register("__pushed", table)
            types = {str(r[0]): str(r[1]) for r in con.execute("DESCRIBE SELECT * FROM __pushed").fetchall()}
            for name, dtype, _default in spec["schema"]:
                if not sources.accepts(dtype, types[name]):
                    raise InvalidInput(f"feature {name!r} of {view!r} is {dtype}; the pushed rows hold {types[name]}")
            ts = con.execute(
                f"SELECT epoch_us(min(CAST({sources.quote(source['timestamp'])} AS TIMESTAMP))), "
                f"epoch_us(max(CAST({sources.quote(source['timestamp'])} AS TIMESTAMP))), "
                f"count(*) FILTER (WHERE {sources.quote(source['timestamp'])} IS NULL) FROM __pushed"
            ).fetchone()
        except Exception as error:
            if isinstance(error, InvalidInput):
                raise
            raise InvalidInput(f"the rows pushed to {view!r} cannot be read: {' '.join(str(error).split())}") from None
        finally:
            con.close()
        assert ts is not None
        if ts[2]:
            raise InvalidInput(f"{ts[2]} pushed rows have no timestamp ({source['timestamp']!r})")
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self._cache_dir, suffix=".parquet", delete=False) as tmp:
            path = Path(tmp.name)
        try:
            pq.write_table(table, path)
            blob = self.artifacts.put_file(path)
        finally:
            path.unlink(missing_ok=True)
        with self.store.write(principal.actor) as unit:
            owner = unit.projects.get(project_name)
            unit.features.add_push(owner, view, blob.digest, table.num_rows, ts[0] // 1000, ts[1] // 1000)
        # Online after offline: a push cut off between the two is pushed again, and both writes are idempotent
        # (the online store keeps the newest row per entity, the join deduplicates equal offline rows).
        con = offline.connect()
        try:
            files = sources.SourceFiles(table=table)
            sources.register_view(con, {"spec": spec}, files, "__pushed_view")
            latest = _latest_per_entity(con, "__pushed_view", stored, None, None)
            rows_latest = con.sql(f"SELECT * FROM {latest}").to_arrow_table()
        finally:
            con.close()
        _write_online(
            self.online_store(),
            f"{project_name}/{view}",
            rows_latest,
            spec["join_keys"],
            [f for f, _t, _d in spec["schema"]],
        )
        return int(table.num_rows)


def _latest_per_entity(
    con: duckdb.DuckDBPyConnection, alias: str, view: StoredDefinition, start_us: int | None, end_us: int | None
) -> str:
    keys = ", ".join(sources.quote(k) for k in view.spec["join_keys"])
    features = ", ".join(f"s.{sources.quote(f)}" for f, _t, _d in view.spec["schema"])
    where = [f"{sources.quote(k)} IS NOT NULL" for k in view.spec["join_keys"]] + ["__ts IS NOT NULL"]
    if start_us is not None and start_us > -(2**62):
        where.append(f"__ts >= {int(start_us)}")
    if end_us is not None:
        where.append(f"__ts < {int(end_us)}")
    # The newest time per entity first (a hash aggregate over keys and times only), then the rows at those
    # times, read once, with the tie rule among them: far cheaper than a window sorting every row's features.
    key_names = view.spec["join_keys"]
    on = " AND ".join(f"s.{sources.quote(k)} = n.{sources.quote(k)}" for k in key_names)
    selected = ", ".join(f"s.{sources.quote(k)}" for k in key_names)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __newest AS SELECT {keys}, max(__ts) AS __fts FROM {alias} "
        f"WHERE {' AND '.join(where)} GROUP BY {keys}"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __latest AS SELECT {selected}, s.__ts AS __ts_us, "
        f"coalesce(s.__created, {NO_CREATED}) AS __created_us, {features}, "
        f"hash({selected}) % {BUCKETS} AS __bucket FROM {alias} s SEMI JOIN __newest n ON {on} AND s.__ts = n.__fts "
        f"QUALIFY row_number() OVER (PARTITION BY {selected} "
        "ORDER BY s.__created DESC NULLS LAST, s.__file DESC, s.__row DESC) = 1"
    )
    return "__latest"


def _write_online(
    online: OnlineStore, namespace: str, rows: pa.Table, keys: Sequence[str], features: Sequence[str]
) -> None:
    if rows.num_rows == 0:
        return
    key_columns = [rows.column(k).to_pylist() for k in keys]
    entity_keys = [_key_bytes(row) for row in zip(*key_columns, strict=True)]
    feature_columns = [rows.column(f).to_pylist() for f in features]
    values = [
        orjson.dumps(dict(zip(features, row, strict=True)), option=orjson.OPT_NAIVE_UTC)
        for row in zip(*feature_columns, strict=True)
    ]
    online.write(
        namespace, entity_keys, rows.column("__ts_us").to_pylist(), rows.column("__created_us").to_pylist(), values
    )


def _apply_on_demand(frame: pd.DataFrame, request: _Request) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    for odv, chosen in request.on_demand:
        namespace: dict[str, Any] = {"pd": pd, "np": np}
        try:
            exec(odv.spec["function"], namespace)  # noqa: S102 - the user's own applied definition, run where the user runs it
            function = namespace[odv.spec["function_name"]]
            inputs = frame[[parse_ref(ref)[1] for ref in odv.spec["inputs"]]].copy()
            result = function(inputs)
        except Exception as error:
            raise UserCodeError(f"on-demand view {odv.name!r} failed: {type(error).__name__}: {error}") from error
        if not isinstance(result, pd.DataFrame):
            raise UserCodeError(f"on-demand view {odv.name!r} must return a pandas DataFrame")
        missing = [f for f in chosen if f not in result.columns]
        if missing or len(result) != len(frame):
            raise UserCodeError(
                f"on-demand view {odv.name!r} must return one row per input row with the columns {chosen}"
            )
        for feature in chosen:
            frame[feature] = result[feature].to_numpy()
    return frame.drop(columns=[c for c in request.hidden if c in frame.columns])


def _times_parsed(columns: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Columns sent as JSON: the time columns given as ISO strings (or epoch milliseconds) become UTC times."""
    import pandas as pd

    parsed = dict(columns)
    for name in names:
        values = parsed.get(name)
        if not isinstance(values, list) or not values or not all(isinstance(v, str | int) for v in values):
            continue
        try:
            if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                parsed[name] = pd.to_datetime(values, unit="ms", utc=True)
            else:
                parsed[name] = pd.to_datetime(values, utc=True, format="ISO8601")
        except (ValueError, TypeError, OverflowError) as error:
            raise InvalidInput(f"column {name!r} must hold ISO times (2012-01-01T10:00:00Z): {error}") from None
    try:
        lengths = {len(v) for v in parsed.values()}
    except TypeError:
        raise InvalidInput("rows must map each column to a list of values") from None
    if len(lengths) > 1:
        raise InvalidInput(f"every column must have the same number of values, got lengths {sorted(lengths)}")
    return parsed


def _as_table(data: Any) -> pa.Table:
    import pandas as pd
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, Mapping):
        try:
            return pa.table(dict(data))
        except (pa.ArrowException, TypeError, ValueError) as error:
            raise InvalidInput(f"the columns cannot form a table: {error}") from None
    raise InvalidInput(f"expected a pandas DataFrame, a pyarrow Table or a dict of columns, not {type(data).__name__}")


def _label_timestamp(table: pa.Table) -> str:
    import pyarrow as pa

    if "event_timestamp" in table.column_names:
        return "event_timestamp"
    times = [f.name for f in table.schema if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)]
    if len(times) == 1:
        return str(times[0])
    raise InvalidInput(
        f"say which label column holds the event time (timestamp=...); the labels have {table.column_names}"
    )


def _micros(value: Any, what: str) -> int | None:
    """A time given as a datetime, a pandas Timestamp, an ISO string or a date -> microseconds (UTC)."""
    if value is None:
        return None
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise InvalidInput(f"{what} must be a date or time (2012-12-31, 2012-12-31T06:00), got {value!r}") from None
    if pd.isna(stamp):
        raise InvalidInput(f"{what} must be a date or time, got {value!r}")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.value // 1000)


def _ms(us: int) -> int:
    return us // 1000 if us > -(2**62) else -(2**62) // 1000


def _show(us: int) -> str:
    import pandas as pd

    return "the beginning" if us <= -(2**62) else str(pd.Timestamp(us * 1000))


__all__ = ["FeatureStore", "OnlineFeatures", "ServingPlan", "check_identifier"]
