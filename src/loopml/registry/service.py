"""The registry service: registered models, versions and aliases, checked, authorised and audited.

A version is made only from a model a run logged: the run id, the package's path among that run's
artifacts and the sha256 of its `loopml-model.json`, which must match the run's artifact record. Nothing
here reads a filesystem path or URL given by a caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from loopml.artifacts import sanitize_path
from loopml.domain import (
    AliasChange,
    ModelVersion,
    ModelVersionStatus,
    Page,
    Principal,
    RegisteredModel,
    Role,
    parse_model_uri,
)
from loopml.domain.models import LATEST, MANIFEST
from loopml.domain.paging import decode_page_token, encode_page_token
from loopml.domain.search import MAX_RESULTS, MODEL_FIELDS, MODEL_VERSION_FIELDS, parse_filter, parse_order_by
from loopml.domain.validation import check_alias, check_key, check_model_name, check_name, check_values
from loopml.errors import (
    AlreadyExists,
    ArtifactNotFound,
    GateRequired,
    InvalidInput,
    InvalidStatus,
    ModelNotFound,
    PermissionDenied,
    ResourceInUse,
    RunNotFound,
)
from loopml.store import MetadataStore, Unit
from loopml.store.registered_models import ModelRow

__all__ = ["MAX_RESULTS", "MAX_SIGNATURE_BYTES", "STAGES", "STAGE_TAG", "RegistryService"]

STAGES = ("None", "Staging", "Production", "Archived")
"""MLflow's model version stages (deprecated there in favour of aliases), kept for old clients."""
STAGE_TAG = "mlflow.stage"
"""The version tag that holds a version's MLflow stage."""

MAX_VERSION = 2**31 - 1
MAX_SIGNATURE_BYTES = 256 * 1024
"""Largest signature accepted, as compact JSON."""
MAX_DESCRIPTION = 8000
MAX_REASON = 2000
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_FLAVOR = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")


def _check_max_results(max_results: object) -> int:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS:
        raise InvalidInput(f"max_results must be an integer from 1 to {MAX_RESULTS}, got {max_results!r}")
    return max_results


def _check_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidInput(f"a model version must be an integer, got {version!r}")
    if not 1 <= version <= MAX_VERSION:
        raise InvalidInput(f"model versions are numbered from 1 to {MAX_VERSION}, got {version}")
    return version


def _check_text(what: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidInput(f"{what} is {len(value)} characters long; the limit is {limit}")
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character, which no store can keep")
    return value


def _optional_text(what: str, value: object, limit: int) -> str | None:
    return None if value is None else _check_text(what, value, limit)


def _check_signature(signature: object) -> dict[str, Any] | None:
    if signature is None:
        return None
    if not isinstance(signature, Mapping):
        raise InvalidInput(f"signature must be a JSON object, got {type(signature).__name__}")
    try:
        encoded = orjson.dumps(dict(signature))
    except TypeError as exc:
        raise InvalidInput(f"signature must be plain JSON (objects, lists, strings, numbers): {exc}") from None
    if len(encoded) > MAX_SIGNATURE_BYTES:
        raise InvalidInput(f"signature is {len(encoded)} bytes as JSON; the limit is {MAX_SIGNATURE_BYTES}")
    if b"\\u0000" in encoded:
        raise InvalidInput("signature contains a NUL character, which no store can keep")
    loaded: dict[str, Any] = orjson.loads(encoded)
    return loaded


def _refuse_if_deployed(unit: Unit, name: str, version: int | None) -> None:
    for deployment in unit.deployments.list():
        for served in deployment.versions:
            if served.model == name and (version is None or served.version == version):
                raise ResourceInUse(
                    f"deployment {deployment.name!r} serves version {served.version} of model {name!r}; "
                    "deploy another version there (or roll it back) before deleting"
                )


def _guard_alias(
    unit: Unit, principal: Principal, model: ModelRow, alias: str, target: ModelVersion, override: str | None
) -> None:
    """Refuse to move an alias that requires a passed gate to a version whose newest gate did not pass."""
    if alias not in unit.evaluations.required_aliases(model):
        return
    newest = unit.evaluations.gate_results(model, target.version, target.manifest_digest, 1)
    if newest and newest[0].passed:
        return
    state = "has no gate result" if not newest else f"failed its newest gate ({newest[0].id})"
    if override is None:
        raise GateRequired(
            f"alias {alias!r} of model {model.name!r} requires a passed gate and version {target.version} {state}; "
            "run `loopml gate` on it, or have an admin move the alias with an override reason"
        )
    if principal.role is not Role.ADMIN:
        raise PermissionDenied(
            f"only an admin may override the gate of alias {alias!r}; the token in use is {principal.role.value}"
        )
    unit.audit.record(
        "model.gate_override",
        "model",
        model.name,
        after={"alias": alias, "version": target.version, "reason": override, "gate": state},
        project=model.project,
    )


class RegistryService:
    """Registered models, their versions and aliases. Viewers read, editors write; a token scoped to a
    project sees only that project's models (others are reported as not existing)."""

    def __init__(self, store: MetadataStore, default_project: str = "default") -> None:
        self.store = store
        self.default_project = default_project

    # -- access ------------------------------------------------------------------------------------

    def _project_for(self, principal: Principal, project: str | None) -> str:
        if project is None:
            return principal.project or self.default_project
        check_name("project", project)
        if not principal.can_see(project):
            raise PermissionDenied(
                f"the token in use is scoped to project {principal.project!r} and cannot reach {project!r}"
            )
        return project

    def _model(self, unit: Unit, principal: Principal, name: str, lock: bool = False) -> ModelRow:
        check_model_name(name)
        found = unit.models.lock(name) if lock else unit.models.find(name)
        if found is None or not principal.can_see(found.project):
            raise ModelNotFound(f"registered model {name!r} does not exist")
        return found

    def _run_project(self, unit: Unit, principal: Principal, run_id: str) -> str:
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise RunNotFound(f"run {run_id!r} does not exist (run ids are 32 hex characters)")
        project = unit.runs.project_of(run_id)
        if not principal.can_see(project):
            raise RunNotFound(f"run {run_id!r} does not exist")
        return project

    # -- models ------------------------------------------------------------------------------------

    def create_model(
        self,
        principal: Principal,
        name: str,
        project: str | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
        exist_ok: bool = False,
    ) -> RegisteredModel:
        """A new registered model; `AlreadyExists` if the name is taken (names are unique across projects), unless
        `exist_ok`: then the model of that name in that project is returned (`get_or_create_model`)."""
        if exist_ok:
            return self.get_or_create_model(principal, name, project, description, tags)
        principal.require(Role.EDITOR)
        check_model_name(name)
        project = self._project_for(principal, project)
        text = _optional_text("description", description, MAX_DESCRIPTION) or ""
        checked_tags = check_values("tag", tags or {})
        with self.store.write(principal.actor) as unit:
            return unit.models.create(unit.projects.get_or_create(project), name, text, principal.actor, checked_tags)

    def get_or_create_model(
        self,
        principal: Principal,
        name: str,
        project: str | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> RegisteredModel:
        """The model named `name` in `project`, created (with `description` and `tags`) if missing.
        `AlreadyExists` if the name is taken in another project."""
        check_model_name(name)
        wanted = self._project_for(principal, project)
        for _ in range(2):
            with self.store.read() as unit:
                found = unit.models.find(name)
                if found is not None:
                    if found.project != wanted:
                        raise AlreadyExists(
                            f"the model name {name!r} is already used in another project (names are unique)"
                        )
                    return unit.models.get(name)
            try:
                return self.create_model(principal, name, wanted, description, tags)
            except AlreadyExists:
                continue  # created by a concurrent writer: read it back
        raise AlreadyExists(f"the model name {name!r} is already used")  # pragma: no cover - needs a delete race

    def get_model(self, principal: Principal, name: str) -> RegisteredModel:
        with self.store.read() as unit:
            self._model(unit, principal, name)
            return unit.models.get(name)

    def update_model(
        self,
        principal: Principal,
        name: str,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> RegisteredModel:
        """Set the description and/or tags (merged: tags not named keep their value)."""
        principal.require(Role.EDITOR)
        text = _optional_text("description", description, MAX_DESCRIPTION)
        checked_tags = check_values("tag", tags) if tags is not None else None
        with self.store.write(principal.actor) as unit:
            self._model(unit, principal, name, lock=True)
            return unit.models.update(name, text, checked_tags)

    def search_models(
        self,
        principal: Principal,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        """One page of the visible models matching `filter` (`tags.<k>`, `attributes.name`, `created_at`,
        `updated_at`), by name unless `order_by` says otherwise."""
        limit = _check_max_results(max_results)
        parsed, order = parse_filter(filter, MODEL_FIELDS), parse_order_by(order_by, MODEL_FIELDS)
        offset = decode_page_token(page_token)
        with self.store.read() as unit:
            ids = unit.models.search_ids(principal.project, parsed, order, limit + 1, offset)
            found = unit.models.get_many(ids[:limit])
        next_token = encode_page_token(offset + limit) if len(ids) > limit else None
        return Page(items=found, next_page_token=next_token)

    def delete_model_tag(self, principal: Principal, name: str, key: str) -> RegisteredModel:
        """Remove tag `key` of model `name` (a key it does not have is a no-op)."""
        principal.require(Role.EDITOR)
        check_key("tag", key)
        with self.store.write(principal.actor) as unit:
            model = self._model(unit, principal, name, lock=True)
            unit.models.delete_tag(model, key)
            return unit.models.get(name)

    def delete_model(self, principal: Principal, name: str) -> None:
        """Delete model `name` with its versions, aliases and tags (each audited). Refused (`ResourceInUse`)
        while a deployment serves one of its versions: roll that deployment to another model first."""
        principal.require(Role.EDITOR)
        with self.store.write(principal.actor) as unit:
            model = self._model(unit, principal, name, lock=True)
            _refuse_if_deployed(unit, name, None)
            for alias in unit.models.get(name).aliases:
                unit.model_versions.delete_alias(model, alias, "model deleted")
            unit.evaluations.drop_requirements(model)
            for number in unit.model_versions.versions(model):
                unit.model_versions.delete(model, number)
            unit.models.delete(model)

    # -- versions ----------------------------------------------------------------------------------

    def create_version(
        self,
        principal: Principal,
        name: str,
        run_id: str,
        artifact_path: str,
        manifest_digest: str,
        flavor: str,
        signature: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        """The next version of model `name`, made from the model package that run `run_id` logged under
        `artifact_path`: the run must have the artifact `<artifact_path>/loopml-model.json` with sha256
        `manifest_digest`, and be in the model's project. Snapshots the run's latest metrics and datasets."""
        principal.require(Role.EDITOR)
        path = sanitize_path(artifact_path)
        if not isinstance(manifest_digest, str) or not _DIGEST.match(manifest_digest):
            raise InvalidInput(f"manifest_digest must be 64 lowercase hex characters (sha256), got {manifest_digest!r}")
        if not isinstance(flavor, str) or not _FLAVOR.match(flavor):
            raise InvalidInput(
                f"flavor must be a name of 1 to 64 letters, digits, '_', '.' or '-' starting with a letter, "
                f"got {flavor!r}"
            )
        checked_signature = _check_signature(signature)
        text = _optional_text("description", description, MAX_DESCRIPTION) or ""
        checked_tags = check_values("tag", tags or {})
        manifest = f"{path}/{MANIFEST}"
        with self.store.write(principal.actor) as unit:
            model = self._model(unit, principal, name, lock=True)
            run_project = self._run_project(unit, principal, run_id)
            if run_project != model.project:
                raise InvalidInput(
                    f"run {run_id} is in project {run_project!r} but model {name!r} is in project "
                    f"{model.project!r}; register a model from a run of the same project"
                )
            try:
                record = unit.artifacts.get(run_id, manifest)
            except ArtifactNotFound:
                raise InvalidInput(
                    f"the run has no logged model at {path!r}: run {run_id} has no artifact {manifest!r} "
                    "(log the model with the run first; a version is never made from a path on disk or a URL)"
                ) from None
            if record.digest != manifest_digest:
                raise InvalidInput(
                    f"the manifest {manifest!r} of run {run_id} has sha256 {record.digest}, not {manifest_digest}: "
                    "the package changed since it was logged, or the digest is of another package"
                )
            version = unit.model_versions.create(
                model, run_id, path, manifest_digest, flavor, checked_signature, text, checked_tags, principal.actor
            )
            return unit.model_versions.get(model, version)

    def get_version(self, principal: Principal, name: str, version: int) -> ModelVersion:
        number = _check_version(version)
        with self.store.read() as unit:
            return unit.model_versions.get(self._model(unit, principal, name), number)

    def update_version(
        self,
        principal: Principal,
        name: str,
        version: int,
        status: str | ModelVersionStatus | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        """Set the status (READY or ARCHIVED), description and/or tags (merged) of a version. A version an
        alias points at cannot be archived: move or delete the alias first."""
        principal.require(Role.EDITOR)
        number = _check_version(version)
        new_status = None
        if status is not None:
            try:
                new_status = ModelVersionStatus(status)
            except ValueError:
                raise InvalidStatus(
                    f"status must be one of {', '.join(s.value for s in ModelVersionStatus)}, got {status!r}"
                ) from None
        text = _optional_text("description", description, MAX_DESCRIPTION)
        checked_tags = check_values("tag", tags) if tags is not None else None
        with self.store.write(principal.actor) as unit:
            model = self._model(unit, principal, name, lock=True)
            current = unit.model_versions.get(model, number)
            if new_status is ModelVersionStatus.ARCHIVED and current.aliases:
                raise InvalidInput(
                    f"version {number} of model {name!r} is aliased as {', '.join(current.aliases)}; "
                    "move or delete those aliases before archiving it"
                )
            return unit.model_versions.update(model, number, new_status, text, checked_tags)

    def delete_version_tag(self, principal: Principal, name: str, version: int, key: str) -> ModelVersion:
        """Remove tag `key` of a version (a key it does not have is a no-op)."""
        principal.require(Role.EDITOR)
        number = _check_version(version)
        check_key("tag", key)
        with self.store.write(principal.actor) as unit:
            model = self._model(unit, principal, name, lock=True)
            unit.model_versions.get(model, number)
            unit.model_versions.delete_tag(model, number, key)
            return unit.model_versions.get(model, number)

    def delete_version(self, principal: Principal, name: str, version: int, drop_aliases: bool = False) -> None:
        """Delete a version with its tags and snapshots. Refused (`ResourceInUse`) while a deployment serves it,
        and while an alias points at it unless `drop_aliases` (MLflow's behaviour): then those aliases are
        deleted with it, each audited."""
        principal.require(Role.EDITOR)
        number = _check_version(version)
        with self.store.write(principal.actor) as unit:
            model = self._model(unit, principal, name, lock=True)
            current = unit.model_versions.get(model, number)
            _refuse_if_deployed(unit, name, number)
            if current.aliases and not drop_aliases:
                raise ResourceInUse(
                    f"version {number} of model {name!r} is aliased as {', '.join(current.aliases)}; "
                    "move or delete those aliases before deleting it"
                )
            for alias in current.aliases:
                unit.model_versions.delete_alias(model, alias, f"version {number} deleted")
            unit.model_versions.delete(model, number)

    def transition_stage(
        self, principal: Principal, name: str, version: int, stage: str, archive_existing: bool = False
    ) -> ModelVersion:
        """MLflow's stages, for clients that still use them: the stage is the version tag `mlflow.stage`;
        `Archived` also archives the version (refused while an alias points at it). With `archive_existing`,
        the other versions in `stage` (Staging or Production) move to Archived."""
        principal.require(Role.EDITOR)
        number = _check_version(version)
        wanted = next((s for s in STAGES if isinstance(stage, str) and s.lower() == stage.lower()), None)
        if wanted is None:
            raise InvalidInput(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
        with self.store.write(principal.actor) as unit:
            model = self._model(unit, principal, name, lock=True)
            targets = [number]
            if archive_existing and wanted in ("Staging", "Production"):
                others = unit.model_versions.get_many([(model.id, n) for n in unit.model_versions.versions(model)])
                targets += [v.version for v in others if v.version != number and v.tags.get(STAGE_TAG) == wanted]
            for target in targets:
                new_stage = wanted if target == number else "Archived"
                current = unit.model_versions.get(model, target)
                archive = new_stage == "Archived"
                if archive and current.aliases:
                    raise InvalidInput(
                        f"version {target} of model {name!r} is aliased as {', '.join(current.aliases)}; "
                        "move or delete those aliases before archiving it"
                    )
                status = ModelVersionStatus.ARCHIVED if archive else ModelVersionStatus.READY
                unit.model_versions.update(model, target, status, None, {STAGE_TAG: new_stage})
            return unit.model_versions.get(model, number)

    def search_versions(
        self,
        principal: Principal,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        name: str | None = None,
    ) -> Page[ModelVersion]:
        """One page of the visible versions matching `filter` (`attributes.name`, `version`, `run_id`,
        `status`, `flavor`, `created_at`, `tags.<k>`, `metrics.<k>` of the snapshot); of model `name` only
        when given. Default order: model name, then newest version first."""
        limit = _check_max_results(max_results)
        parsed = parse_filter(filter, MODEL_VERSION_FIELDS)
        order = parse_order_by(order_by, MODEL_VERSION_FIELDS)
        offset = decode_page_token(page_token)
        with self.store.read() as unit:
            model_id = None if name is None else self._model(unit, principal, name).id
            keys = unit.model_versions.search_keys(principal.project, model_id, parsed, order, limit + 1, offset)
            found = unit.model_versions.get_many(keys[:limit])
        next_token = encode_page_token(offset + limit) if len(keys) > limit else None
        return Page(items=found, next_page_token=next_token)

    # -- aliases -----------------------------------------------------------------------------------

    def set_alias(
        self,
        principal: Principal,
        name: str,
        alias: str,
        version: int,
        reason: str | None = None,
        override_reason: str | None = None,
    ) -> ModelVersion:
        """Point `alias` at `version` (a READY version), atomically: the alias names exactly one version at
        every moment. Every call is an audit event `model.set_alias` with the actor and `reason`.

        An alias that requires a passed gate (`loopml models require-gate`) only moves to a version whose newest
        gate result passed (`GateRequired`, 409, otherwise), unless an admin gives `override_reason` (audited
        as `model.gate_override`)."""
        principal.require(Role.EDITOR)
        check_alias(alias)
        number = _check_version(version)
        why = _optional_text("reason", reason, MAX_REASON)
        override = _optional_text("override_reason", override_reason, MAX_REASON)
        if override is not None and not override.strip():
            raise InvalidInput("override_reason must say why the gate is overridden")
        with self.store.write(principal.actor) as unit:
            model = self._model(unit, principal, name, lock=True)
            target = unit.model_versions.get(model, number)
            if target.status is not ModelVersionStatus.READY:
                raise InvalidInput(
                    f"version {number} of model {name!r} is {target.status.value}; an alias can only point at a "
                    "READY version (set its status back to READY first)"
                )
            _guard_alias(unit, principal, model, alias, target, override)
            unit.model_versions.set_alias(model, alias, number, why)
            return unit.model_versions.get(model, number)

    def delete_alias(self, principal: Principal, name: str, alias: str, reason: str | None = None) -> int:
        """Remove `alias` (audited as `model.delete_alias`); returns the version it pointed at."""
        principal.require(Role.EDITOR)
        check_alias(alias)
        why = _optional_text("reason", reason, MAX_REASON)
        with self.store.write(principal.actor) as unit:
            model = self._model(unit, principal, name, lock=True)
            return unit.model_versions.delete_alias(model, alias, why)

    def alias_history(self, principal: Principal, name: str, limit: int = 100) -> list[AliasChange]:
        """Every move of the model's aliases, newest first: who pointed which alias from which version to
        which, when and why (the `model.set_alias` / `model.delete_alias` audit events, readable by viewers)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
            raise InvalidInput(f"limit must be an integer from 1 to {MAX_RESULTS}, got {limit!r}")
        with self.store.read() as unit:
            model = self._model(unit, principal, name)
            return unit.model_versions.alias_history(model, limit)

    def get_alias(self, principal: Principal, name: str, alias: str) -> ModelVersion:
        return self.resolve(principal, name, alias)

    def resolve(
        self, principal: Principal, uri_or_name: str, alias_or_version: str | int | None = None
    ) -> ModelVersion:
        """The version a reference names: `models:/name@alias`, `models:/name/3`, `models:/name@latest`
        (the highest READY version), `name@alias`, `name/3`, or a name plus `alias_or_version`."""
        reference = parse_model_uri(uri_or_name, alias_or_version)
        with self.store.read() as unit:
            model = self._model(unit, principal, reference.name)
            if reference.alias is None:
                return unit.model_versions.get(model, _check_version(reference.version))
            if reference.alias == LATEST:
                number = unit.model_versions.latest_ready(model)
            else:
                number = unit.model_versions.alias(model, check_alias(reference.alias))
            return unit.model_versions.get(model, number)
