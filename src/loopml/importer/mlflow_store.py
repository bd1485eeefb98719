"""Copying an MLflow tracking store into loopml: experiments, runs, metric histories, params, tags, artifacts,
registered models and their versions, aliases and tags.

Idempotent and resumable: a run is written with its params, tags, metric history and artifact records in
the transaction that creates it (a batch of runs per transaction), so after a crash a run is in loopml
whole or not at all, and a second import skips the runs already there (by their MLflow run id, which is
the loopml run id) and every version already registered. Blobs go into the content-addressed artifact
store before the transaction that records them; an upload a crash cut short is swept as any other.

A registered model version becomes a loopml version: its MLflow model directory is imported with
`registry.import_mlflow` (sha256 manifest, signature and input example from the `MLmodel`), uploaded as a
package to the version's run under `models/<source>` (the original MLflow files under `mlflow-models/...`),
and registered with MLflow's version number and creation time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from loopml.artifacts import ArtifactStore, sanitize_path
from loopml.domain import (
    LoggedModelRecord,
    LoggedModelStatus,
    MetricColumns,
    ModelVersionStatus,
    Principal,
    Role,
    RunStatus,
)
from loopml.domain.models import MANIFEST
from loopml.domain.validation import (
    check_alias,
    check_key,
    check_metric_columns,
    check_model_name,
    check_name,
    check_values,
)
from loopml.errors import InvalidInput, LoopmlError, PermissionDenied
from loopml.importer.mlflow_source import MlflowModelVersion, MlflowRun, MlflowSource, RunMetrics
from loopml.registry import import_mlflow
from loopml.store import MetadataStore, Unit
from loopml.store.runs import NewRun

__all__ = ["ImportReport", "MlflowStoreImport", "Progress"]

RUNS_PER_TRANSACTION = 100
_STATUSES = {"RUNNING": RunStatus.RUNNING, "SCHEDULED": RunStatus.RUNNING, "FINISHED": RunStatus.FINISHED}
_STATUSES |= {"FAILED": RunStatus.FAILED, "KILLED": RunStatus.KILLED}
_STAGE_TAG = "mlflow.stage"


@dataclass
class ImportReport:
    """What an import did; `skipped` says what was left out and why."""

    experiments: int = 0
    runs: int = 0
    runs_already_there: int = 0
    metric_points: int = 0
    artifacts: int = 0
    models: int = 0
    versions: int = 0
    versions_already_there: int = 0
    aliases: int = 0
    skipped: list[str] = field(default_factory=list)


class Progress:
    """Told how far the import got; the CLI draws a progress bar from it. Does nothing by default."""

    def start(self, runs: int, points: int) -> None:
        """Called once, before the first run, with the totals to expect."""

    def advance(self, runs: int, points: int) -> None:
        """Called after each committed batch of runs."""

    def note(self, message: str) -> None:
        """Something left out (a deleted run, an alias loopml cannot name...)."""


@dataclass(frozen=True, slots=True)
class _PreparedRun:
    run: MlflowRun
    experiment_id: int
    params: dict[str, str]
    tags: dict[str, str]
    metrics: MetricColumns
    artifacts: list[tuple[str, str, int]]  # (path, digest, size)


@dataclass(frozen=True, slots=True)
class _ReadBatch:
    existing: set[str]
    """Runs of the batch already in loopml (an earlier import)."""
    runs: list[_PreparedRun]


class MlflowStoreImport:
    """`run(principal, source)` copies an opened `MlflowSource` into loopml's stores, as `principal`
    (an editor of `project`)."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, project: str = "default") -> None:
        self.store = store
        self.artifacts = artifacts
        self.project = check_name("project", project)

    def run(
        self,
        principal: Principal,
        source: MlflowSource,
        progress: Progress | None = None,
        trust_pickle: bool = False,
    ) -> ImportReport:
        principal.require(Role.EDITOR)
        if not principal.can_see(self.project):
            raise PermissionDenied(
                f"the token in use is scoped to project {principal.project!r} and cannot import into {self.project!r}"
            )
        progress = progress or Progress()
        report = ImportReport()
        deleted = source.count_deleted_runs()
        if deleted:
            self._skip(report, progress, f"{deleted} deleted run(s) (MLflow lifecycle 'deleted') not imported")
        experiment_ids = self._experiments(principal, source, report, progress)
        all_runs = source.runs()
        total_runs, total_points = source.count_runs()
        progress.start(total_runs, total_points)
        imported: set[str] = set()
        batches = [all_runs[i : i + RUNS_PER_TRANSACTION] for i in range(0, len(all_runs), RUNS_PER_TRANSACTION)]
        # Reading and checking the next batch (the MLflow database, artifact files) overlaps with writing this
        # one: both spend most of their time in SQLite and file I/O, outside the GIL.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-mlflow-read") as reader:

            def read(index: int) -> Future[_ReadBatch]:
                return reader.submit(self._read_runs, source, batches[index], experiment_ids, report, progress)

            pending = read(0) if batches else None
            for index, batch in enumerate(batches):
                assert pending is not None
                ready = pending.result()
                pending = read(index + 1) if index + 1 < len(batches) else None
                done = self._write_runs(principal, ready, imported, report)
                progress.advance(len(batch), done)
        for model in source.registered_models():
            self._import_model(principal, source, model.name, report, progress, trust_pickle)
        return report

    @staticmethod
    def _skip(report: ImportReport, progress: Progress, message: str) -> None:
        report.skipped.append(message)
        progress.note(message)

    # -- tracking ------------------------------------------------------------------------------------

    def _experiments(
        self, principal: Principal, source: MlflowSource, report: ImportReport, progress: Progress
    ) -> dict[str, int]:
        ids: dict[str, int] = {}
        with self.store.write(principal.actor) as unit:
            project = unit.projects.get_or_create(self.project)
            for experiment in source.experiments():
                try:
                    check_name("experiment", experiment.name)
                except LoopmlError as exc:
                    self._skip(report, progress, f"experiment {experiment.id}: {exc.message}")
                    continue
                existing = unit.experiments.find(self.project, experiment.name)
                ids[experiment.id] = (existing or unit.experiments.get_or_create(project, experiment.name)).id
                report.experiments += existing is None
                if experiment.tags:
                    self._skip(
                        report,
                        progress,
                        f"experiment {experiment.name!r}: its {len(experiment.tags)} tag(s) (loopml experiments "
                        "have no tags)",
                    )
        return ids

    def _read_runs(
        self,
        source: MlflowSource,
        batch: Sequence[MlflowRun],
        experiment_ids: dict[str, int],
        report: ImportReport,
        progress: Progress,
    ) -> _ReadBatch:
        """Which runs of `batch` are new, with everything they hold read, checked and their blobs uploaded."""
        wanted = [r for r in batch if r.experiment_id in experiment_ids]
        with self.store.read() as unit:
            there = unit.runs.existing([r.id for r in wanted])
        todo = [r for r in wanted if r.id not in there and _valid_run_id(r.id)]
        for bad in (r for r in wanted if not _valid_run_id(r.id)):
            self._skip(report, progress, f"run {bad.id!r}: not a 32-hex-character run id")
        if not todo:
            return _ReadBatch(there, [])
        ids = [r.id for r in todo]
        params, tags, metrics = source.params(ids), source.tags(ids), source.metrics(ids)
        prepared = [
            self._prepare(r, experiment_ids[r.experiment_id], params, tags, metrics, source, report, progress)
            for r in todo
        ]
        return _ReadBatch(there, prepared)

    def _write_runs(self, principal: Principal, ready: _ReadBatch, imported: set[str], report: ImportReport) -> int:
        """Write the new runs of a batch in one transaction; returns how many metric points it stored."""
        report.runs_already_there += len(ready.existing)
        imported.update(ready.existing)
        prepared = ready.runs
        if not prepared:
            return 0
        new_runs = []
        for item in prepared:
            run = item.run
            new_runs.append(
                NewRun(
                    id=run.id,
                    experiment_id=item.experiment_id,
                    name=_run_name(run),
                    status=_STATUSES.get(run.status, RunStatus.FINISHED),
                    start_time=run.start_time or 0,
                    end_time=None if run.status in ("RUNNING", "SCHEDULED") else (run.end_time or run.start_time or 0),
                    parent_run_id=run.parent_run_id if run.parent_run_id in imported else None,
                    params=item.params,
                    tags=item.tags,
                )
            )
            imported.add(run.id)  # a child later in this batch may name it as its parent
        with self.store.write(principal.actor) as unit:
            unit.runs.create_many(new_runs, self.project, "mlflow")
            points = unit.metrics.log_new_runs([(p.run.id, p.metrics) for p in prepared], self.project)
            for item in prepared:
                for path, digest, size in item.artifacts:
                    unit.artifacts.put(item.run.id, path, digest, size)
        report.runs += len(prepared)
        report.metric_points += points
        report.artifacts += sum(len(p.artifacts) for p in prepared)
        return points

    def _prepare(
        self,
        run: MlflowRun,
        experiment_id: int,
        params: dict[str, dict[str, str]],
        tags: dict[str, dict[str, str]],
        metrics: dict[str, RunMetrics],
        source: MlflowSource,
        report: ImportReport,
        progress: Progress,
    ) -> _PreparedRun:
        """Check everything of one run that loopml checks, and upload its artifact blobs."""
        what = f"run {run.id}"
        checked_params = self._values(f"{what}: param", params.get(run.id, {}), report, progress)
        checked_tags = self._values(f"{what}: tag", tags.get(run.id, {}), report, progress)
        found = metrics.get(run.id)
        columns = MetricColumns([], [], [], [])
        if found is not None:
            columns = MetricColumns(found.keys, found.values, found.steps, found.timestamps)
            bad = {k for k in set(found.keys) if not _valid_key(k)}
            if bad:
                self._skip(report, progress, f"{what}: metric(s) {sorted(bad)} have keys loopml does not accept")
                keep = [i for i, k in enumerate(found.keys) if k not in bad]
                columns = MetricColumns(
                    [found.keys[i] for i in keep],
                    [found.values[i] for i in keep],
                    [found.steps[i] for i in keep],
                    [found.timestamps[i] for i in keep],
                )
            try:
                check_metric_columns(columns.keys, columns.values, columns.steps, columns.timestamps)
            except LoopmlError as exc:
                self._skip(report, progress, f"{what}: metric history not imported: {exc.message}")
                columns = MetricColumns([], [], [], [])
        uploaded = self._upload_directory(source.local_directory(run.artifact_uri, run.experiment_id, run.id), "")
        return _PreparedRun(run, experiment_id, checked_params, checked_tags, columns, uploaded)

    def _values(self, what: str, values: dict[str, str], report: ImportReport, progress: Progress) -> dict[str, str]:
        try:
            return check_values("value", values)
        except LoopmlError:
            kept: dict[str, str] = {}
            for key, value in values.items():
                try:
                    kept |= check_values("value", {key: value})
                except LoopmlError as exc:
                    self._skip(report, progress, f"{what} {key!r}: {exc.message}")
            return kept

    def _upload_directory(self, directory: Path | None, prefix: str) -> list[tuple[str, str, int]]:
        """Upload every regular file under `directory` (symlinks are not followed); (path, digest, size)."""
        if directory is None:
            return []
        uploaded = []
        for path in sorted(directory.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            relative = path.relative_to(directory).as_posix()
            name = sanitize_path(f"{prefix}/{relative}" if prefix else relative)
            with path.open("rb") as stream:
                blob = self.artifacts.put(stream)
            uploaded.append((name, blob.digest, blob.size))
        return uploaded

    # -- registry ------------------------------------------------------------------------------------

    def _import_model(
        self,
        principal: Principal,
        source: MlflowSource,
        name: str,
        report: ImportReport,
        progress: Progress,
        trust_pickle: bool,
    ) -> None:
        model = next(m for m in source.registered_models() if m.name == name)
        try:
            check_model_name(name)
        except LoopmlError as exc:
            self._skip(report, progress, f"registered model {name!r}: {exc.message}")
            return
        model_tags = self._values(f"model {name!r}: tag", model.tags, report, progress)
        with self.store.write(principal.actor) as unit:
            found = unit.models.find(name)
            if found is None:
                project = unit.projects.get_or_create(self.project)
                unit.models.create(project, name, model.description, principal.actor, model_tags)
                report.models += 1
            elif found.project != self.project:
                self._skip(
                    report, progress, f"registered model {name!r}: the name is taken in project {found.project!r}"
                )
                return
        for version in source.model_versions(name):
            self._import_version(principal, source, version, report, progress, trust_pickle)
        with self.store.write(principal.actor) as unit:
            row = unit.models.lock(name)
            for alias, number in sorted(model.aliases.items()):
                try:
                    check_alias(alias)
                except LoopmlError as exc:
                    self._skip(report, progress, f"model {name!r}: alias {alias!r} not imported: {exc.message}")
                    continue
                try:
                    current = unit.model_versions.alias(row, alias)
                except LookupError:
                    current = None
                if current == number:
                    continue
                try:
                    target = unit.model_versions.get(row, number)
                except LookupError:
                    self._skip(
                        report, progress, f"model {name!r}: alias {alias!r} names version {number}, not imported"
                    )
                    continue
                if target.status is not ModelVersionStatus.READY:
                    self._skip(report, progress, f"model {name!r}: alias {alias!r} names archived version {number}")
                    continue
                unit.model_versions.set_alias(row, alias, number, "imported from MLflow")
                report.aliases += 1

    def _import_version(
        self,
        principal: Principal,
        source: MlflowSource,
        version: MlflowModelVersion,
        report: ImportReport,
        progress: Progress,
        trust_pickle: bool,
    ) -> None:
        what = f"model {version.name!r} version {version.version}"
        with self.store.read() as unit:
            row = unit.models.find(version.name)
            assert row is not None  # created just before
            try:
                unit.model_versions.get(row, version.version)
            except LookupError:
                pass
            else:
                report.versions_already_there += 1
                return
            run_there = version.run_id is not None and bool(unit.runs.existing([version.run_id]))
        if not run_there:
            self._skip(report, progress, f"{what}: its run {version.run_id} was not imported (deleted or missing)")
            return
        assert version.run_id is not None
        located = self._model_directory(source, version)
        if located is None:
            self._skip(
                report,
                progress,
                f"{what}: its model files ({version.storage_location or version.source}) are not under --artifacts",
            )
            return
        directory, key = located
        prefix = f"models/{key}"
        try:
            with tempfile.TemporaryDirectory(prefix="loopml-import-") as scratch:
                package = import_mlflow(directory, Path(scratch) / "package", trust_pickle=trust_pickle)
                files = self._upload_directory(package.directory, prefix)
        except (InvalidInput, PermissionDenied) as exc:
            self._skip(report, progress, f"{what}: {exc.message}")
            return
        originals = self._upload_directory(directory, f"mlflow-models/{key}")
        manifest = package.manifest
        tags = self._values(f"{what}: tag", version.tags, report, progress)
        if version.stage not in ("None", ""):
            tags[_STAGE_TAG] = version.stage
        status = ModelVersionStatus.ARCHIVED if version.stage == "Archived" else ModelVersionStatus.READY
        with self.store.write(principal.actor) as unit:
            row = unit.models.lock(version.name)
            for path, digest, size in [*originals, *files]:  # the manifest is among `files`, recorded last
                unit.artifacts.put(version.run_id, path, digest, size)
            if key.startswith("m-") and not unit.logged_models.get_many([key]):
                # an MLflow 3 logged model: recorded as one, so MLflow clients of `loopml server` load this
                # version from its original files as they would from MLflow
                self._record_logged_model(unit, key, version.run_id, manifest.flavor, package.digest, version)
            highest = unit.model_versions.highest(row)
            if version.version <= highest:
                self._skip(report, progress, f"{what}: loopml already has version {highest} of this model")
                return
            unit.model_versions.create(
                row,
                version.run_id,
                prefix,
                package.digest,
                manifest.flavor,
                manifest.signature.to_dict() if manifest.signature else None,
                version.description,
                tags,
                principal.actor,
                number=version.version,
                created_at=version.created_at,
            )
            if status is ModelVersionStatus.ARCHIVED:
                unit.model_versions.update(row, version.version, status, None, None)
        assert any(path == f"{prefix}/{MANIFEST}" for path, _, _ in files)
        report.versions += 1

    def _record_logged_model(
        self, unit: Unit, model_id: str, run_id: str, flavor: str, digest: str, version: MlflowModelVersion
    ) -> None:
        run = unit.runs.get(run_id)
        at = version.created_at or 0
        record = LoggedModelRecord(
            id=model_id,
            experiment_id=run.experiment_id,
            run_id=run_id,
            name=version.name,
            model_type="",
            status=LoggedModelStatus.READY,
            status_message="",
            manifest_digest=None,
            flavor=None,
            created_at=at,
            updated_at=at,
        )
        unit.logged_models.create(record, self.project)
        unit.logged_models.finalize(model_id, LoggedModelStatus.READY, "", digest, flavor, self.project)

    @staticmethod
    def _model_directory(source: MlflowSource, version: MlflowModelVersion) -> tuple[Path, str] | None:
        """The local directory of a version's MLflow model, and the key its package is uploaded under."""
        if version.source.startswith("models:/m-"):
            model_id = version.source.removeprefix("models:/").split("/", 1)[0]
            location = source.logged_model_location(model_id)
            if location is None:
                return None
            directory = source.local_directory(location[1], location[0], "models")
            return None if directory is None else (directory, model_id)
        assert version.run_id is not None
        uri = version.storage_location or version.source
        if uri.startswith("runs:/"):
            _, _, rest = uri.removeprefix("runs:/").partition("/")
            relative = rest.strip("/")
        else:
            marker = f"/{version.run_id}/artifacts/"
            if marker not in uri:
                return None
            relative = uri.split(marker, 1)[1].strip("/")
        run_directory = source.run_directory(version.run_id)
        if run_directory is None or not relative:
            return None
        directory = (run_directory / relative).resolve()
        if not directory.is_relative_to(run_directory) or not directory.is_dir():
            return None
        return directory, sanitize_path(relative)


def _valid_run_id(run_id: str) -> bool:
    return len(run_id) == 32 and all(c in "0123456789abcdef" for c in run_id)


def _valid_key(key: str) -> bool:
    try:
        check_key("metric", key)
    except LoopmlError:
        return False
    return True


def _run_name(run: MlflowRun) -> str:
    name = run.name.strip() or f"run-{run.id[:8]}"
    try:
        return check_name("run", name)
    except LoopmlError:
        return f"run-{run.id[:8]}"
