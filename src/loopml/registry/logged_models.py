"""MLflow 3 logged models, checked, authorised and audited: what `mlflow.<flavor>.log_model` creates before
it uploads the model's files, and finalizes after.

The files are the source run's artifacts under `mlflow-models/<id>/` (the MLflow artifact proxy writes them
there). Finalizing a logged model READY imports its `MLmodel` with `import_mlflow` into a loopml package under
`models/<id>/` of the same run (sha256 manifest, signature and input example from the MLmodel), so
registering it makes an ordinary loopml version: aliases, gates, deployments and audit apply. A model loopml
cannot import (a flavor it does not support) stays READY for MLflow's own loading, with the reason in its
status message, and cannot be registered.
"""

from __future__ import annotations

import importlib
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from loopml.artifacts import ArtifactStore, sanitize_path
from loopml.domain import LoggedModelRecord, LoggedModelStatus, Page, Principal, Role
from loopml.domain.models import MANIFEST
from loopml.domain.paging import decode_page_token, encode_page_token
from loopml.domain.validation import check_key, check_name, check_values
from loopml.errors import InvalidInput, LoggedModelNotFound, LoopmlError, RunNotFound
from loopml.registry.mlflow_import import import_mlflow
from loopml.store import MetadataStore, Unit
from loopml.store.audit import now_ms

__all__ = ["LoggedModelService"]

MAX_RESULTS = 1000
_ID_PREFIX = "m-"


def _check_id(model_id: object) -> str:
    if (
        not isinstance(model_id, str)
        or not model_id.startswith(_ID_PREFIX)
        or len(model_id) != 34
        or not set(model_id[2:]) <= set("0123456789abcdef")
    ):
        raise LoggedModelNotFound(f"logged model {model_id!r} does not exist (ids are m- and 32 hex characters)")
    return model_id


class LoggedModelService:
    def __init__(self, store: MetadataStore, artifacts: ArtifactStore) -> None:
        self.store = store
        self.artifacts = artifacts

    def warm_up(self) -> None:
        """Import what packaging a logged model needs (pandas, scikit-learn, skops, PyYAML: many seconds on a
        cold, loaded machine), so the first MLflow `log_model` does not pay for it inside its request. Meant
        for a background thread of a long-running server; a library that is missing is simply skipped."""
        for name in ("yaml", "pandas", "sklearn", "skops.io"):
            try:
                importlib.import_module(name)
            except ImportError:
                continue

    def _visible(self, unit: Unit, principal: Principal, model_id: str) -> tuple[LoggedModelRecord, str]:
        _check_id(model_id)
        project = unit.logged_models.project_of(model_id)
        if project is None or not principal.can_see(project):
            raise LoggedModelNotFound(f"logged model {model_id!r} does not exist")
        return unit.logged_models.get(model_id), project

    def create(
        self,
        principal: Principal,
        experiment_id: int,
        run_id: str,
        name: str | None = None,
        model_type: str | None = None,
        tags: Mapping[str, object] | None = None,
        params: Mapping[str, object] | None = None,
    ) -> LoggedModelRecord:
        """A PENDING logged model of run `run_id` (in experiment `experiment_id`), for its files to be uploaded."""
        principal.require(Role.EDITOR)
        model_id = f"{_ID_PREFIX}{uuid.uuid4().hex}"
        checked_name = check_name("logged model", name) if name else f"model-{model_id[2:10]}"
        kind = check_name("model type", model_type) if model_type else ""
        checked_tags, checked_params = check_values("tag", tags or {}), check_values("param", params or {})
        at = now_ms()
        with self.store.write(principal.actor) as unit:
            if not isinstance(run_id, str) or len(run_id) != 32:
                raise RunNotFound(f"run {run_id!r} does not exist")
            project = unit.runs.project_of(run_id)
            if not principal.can_see(project):
                raise RunNotFound(f"run {run_id!r} does not exist")
            run = unit.runs.get(run_id)
            if run.experiment_id != experiment_id:
                raise InvalidInput(f"run {run_id} is in experiment {run.experiment_id}, not {experiment_id}")
            record = LoggedModelRecord(
                id=model_id,
                experiment_id=experiment_id,
                run_id=run_id,
                name=checked_name,
                model_type=kind,
                status=LoggedModelStatus.PENDING,
                status_message="",
                manifest_digest=None,
                flavor=None,
                created_at=at,
                updated_at=at,
                tags=checked_tags,
                params=checked_params,
            )
            unit.logged_models.create(record, project)
            return unit.logged_models.get(model_id)

    def get(self, principal: Principal, model_id: str) -> LoggedModelRecord:
        with self.store.read() as unit:
            return self._visible(unit, principal, model_id)[0]

    def locate(self, principal: Principal, model_id: str) -> LoggedModelRecord:
        """The logged model whose files an artifact request names (the artifact proxy maps
        `<experiment>/models/<id>/artifacts/<path>` to the run's `mlflow-models/<id>/<path>` with it)."""
        return self.get(principal, model_id)

    def set_tags(self, principal: Principal, model_id: str, tags: Mapping[str, object]) -> LoggedModelRecord:
        principal.require(Role.EDITOR)
        checked = check_values("tag", tags)
        with self.store.write(principal.actor) as unit:
            _, project = self._visible(unit, principal, model_id)
            unit.logged_models.set_values(model_id, "tags", checked, project)
            return unit.logged_models.get(model_id)

    def log_params(self, principal: Principal, model_id: str, params: Mapping[str, object]) -> LoggedModelRecord:
        principal.require(Role.EDITOR)
        checked = check_values("param", params)
        with self.store.write(principal.actor) as unit:
            _, project = self._visible(unit, principal, model_id)
            unit.logged_models.set_values(model_id, "params", checked, project)
            return unit.logged_models.get(model_id)

    def delete_tag(self, principal: Principal, model_id: str, key: str) -> None:
        principal.require(Role.EDITOR)
        check_key("tag", key)
        with self.store.write(principal.actor) as unit:
            _, project = self._visible(unit, principal, model_id)
            unit.logged_models.delete_tag(model_id, key, project)

    def finalize(self, principal: Principal, model_id: str, status: str) -> LoggedModelRecord:
        """Mark the upload done (READY: the MLmodel is imported into a loopml package) or FAILED."""
        principal.require(Role.EDITOR)
        try:
            wanted = LoggedModelStatus(status)
        except ValueError:
            raise InvalidInput(f"status must be READY or FAILED, got {status!r}") from None
        if wanted is LoggedModelStatus.PENDING:
            raise InvalidInput("status must be READY or FAILED: a logged model cannot go back to PENDING")
        with self.store.read() as unit:
            record, project = self._visible(unit, principal, model_id)
        if record.status is wanted and (wanted is LoggedModelStatus.FAILED or record.manifest_digest is not None):
            return record  # finalized already (a client retrying): nothing to redo
        digest = flavor = None
        message = ""
        uploaded: list[tuple[str, str, int]] = []
        if wanted is LoggedModelStatus.READY:
            try:
                digest, flavor, uploaded = self._package(record)
            except LoopmlError as exc:
                message = f"loopml could not make a package of this model: {exc.message}"
        with self.store.write(principal.actor) as unit:
            unit.logged_models.finalize(model_id, wanted, message, digest, flavor, project)
            if digest is not None:
                for path, blob, size in uploaded:
                    unit.artifacts.put(record.run_id, path, blob, size)
            return unit.logged_models.get(model_id)

    def _package(self, record: LoggedModelRecord) -> tuple[str, str, list[tuple[str, str, int]]]:
        """Import the MLflow files of `record` into a package, store its blobs: (digest, flavor, files)."""
        with self.store.read() as unit:
            files = unit.artifacts.list(record.run_id, record.mlflow_prefix)
        if not files:
            raise InvalidInput(f"no files were uploaded under {record.mlflow_prefix}/ of run {record.run_id}")
        with tempfile.TemporaryDirectory(prefix="loopml-logged-model-") as scratch:
            source = Path(scratch) / "mlflow"
            for item in files:
                relative = sanitize_path(item.path.removeprefix(record.mlflow_prefix + "/"))
                target = source / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                self.artifacts.get_file(item.digest, target)
            package = import_mlflow(source, Path(scratch) / "package")
            uploaded = []
            for path in sorted(p for p in package.directory.rglob("*") if p.is_file()):
                relative = path.relative_to(package.directory).as_posix()
                if relative == MANIFEST:
                    continue
                with path.open("rb") as stream:
                    blob = self.artifacts.put(stream)
                uploaded.append((f"{record.package_prefix}/{relative}", blob.digest, blob.size))
            with (package.directory / MANIFEST).open("rb") as stream:  # recorded last: the package is whole
                blob = self.artifacts.put(stream, expected_sha256=package.digest)
            uploaded.append((f"{record.package_prefix}/{MANIFEST}", blob.digest, blob.size))
        return package.digest, package.manifest.flavor, uploaded

    def search(
        self,
        principal: Principal,
        experiment_ids: Sequence[int],
        max_results: int = 100,
        page_token: str | None = None,
        equals: Mapping[str, str] | None = None,
    ) -> Page[LoggedModelRecord]:
        """The logged models of the experiments, newest first; with `equals`, only those whose `name`,
        `run_id` or `model_type` have the given values."""
        unknown = set(equals or {}) - {"name", "run_id", "model_type"}
        if unknown:
            raise InvalidInput(f"logged models are searched by name, run_id and model_type, not {sorted(unknown)}")
        if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS:
            raise InvalidInput(f"max_results must be an integer from 1 to {MAX_RESULTS}, got {max_results!r}")
        offset = decode_page_token(page_token)
        with self.store.read() as unit:
            visible = []
            for experiment_id in experiment_ids:
                try:
                    experiment = unit.experiments.get(experiment_id)
                except LookupError:
                    continue
                if principal.can_see(experiment.project):
                    visible.append(experiment_id)
            ids = unit.logged_models.search_ids(visible, max_results + 1, offset, equals) if visible else []
            found = unit.logged_models.get_many(ids[:max_results])
        token = encode_page_token(offset + max_results) if len(ids) > max_results else None
        return Page(items=found, next_page_token=token)
