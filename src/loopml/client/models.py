"""The model registry: registered models, versions, aliases, packages (`client.models`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopml.api import registry as ops
from loopml.domain import AliasChange, ModelVersion, Page, RegisteredModel
from loopml.errors import InvalidInput

if TYPE_CHECKING:
    from loopml.client.client import Client
    from loopml.client.model_packages import LoggedModel
    from loopml.data import Contract
    from loopml.registry import LoadedModel


class Models:
    """The model registry: registered models, their versions and aliases (`client.models`).

    Loading a model, `log_model` and downloads build on these calls; this class only records and
    resolves.

        client.models.create("bike-demand")
        version = client.models.create_version("bike-demand", run.id, "model", manifest.digest, "sklearn")
        client.models.set_alias("bike-demand", "champion", version.version, reason="beats v3 on rmse")
        client.models.resolve("models:/bike-demand@champion")
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._backend = client.backend

    def create(
        self,
        name: str,
        project: str | None = None,
        *,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
        exist_ok: bool = False,
    ) -> RegisteredModel:
        """Register a model name (unique across projects); with `exist_ok`, return it if it exists."""
        return self._backend.call(
            ops.CREATE_MODEL, name=name, project=project, description=description, tags=tags, exist_ok=exist_ok
        )

    def get(self, name: str) -> RegisteredModel:
        return self._backend.call(ops.GET_MODEL, name=name)

    def update(
        self, name: str, *, description: str | None = None, tags: Mapping[str, object] | None = None
    ) -> RegisteredModel:
        """Set the description and/or tags (merged: tags not named keep their value)."""
        return self._backend.call(ops.UPDATE_MODEL, name=name, description=description, tags=tags)

    def search(
        self,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        """One page of models matching `filter` (`tags.<k>`, `attributes.name`, `attributes.created_at`,
        `attributes.updated_at`); pass `next_page_token` back for the next page."""
        return self._backend.call(
            ops.SEARCH_MODELS, filter=filter, order_by=order_by, max_results=max_results, page_token=page_token
        )

    def create_version(
        self,
        name: str,
        run_id: str,
        artifact_path: str,
        manifest_digest: str,
        flavor: str,
        *,
        signature: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        """The next version of `name`, from the model package run `run_id` logged under `artifact_path`
        (its `loopml-model.json` must have sha256 `manifest_digest`)."""
        return self._backend.call(
            ops.CREATE_MODEL_VERSION,
            name=name,
            run_id=run_id,
            artifact_path=artifact_path,
            manifest_digest=manifest_digest,
            flavor=flavor,
            signature=signature,
            description=description,
            tags=tags,
        )

    def delete(self, name: str) -> None:
        """Delete model `name` with its versions, aliases and tags (audited). Refused with `ResourceInUse`
        while a deployment serves one of its versions."""
        self._backend.call(ops.DELETE_MODEL, name=name)

    def delete_tag(self, name: str, key: str) -> RegisteredModel:
        """Remove tag `key` of model `name` (a key it does not have is a no-op)."""
        return self._backend.call(ops.DELETE_MODEL_TAG, name=name, key=key)

    def get_version(self, name: str, version: int) -> ModelVersion:
        return self._backend.call(ops.GET_MODEL_VERSION, name=name, version=version)

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version with its tags. Refused with `ResourceInUse` while a deployment serves it or an
        alias points at it (move or delete the alias first)."""
        self._backend.call(ops.DELETE_MODEL_VERSION, name=name, version=version)

    def delete_version_tag(self, name: str, version: int, key: str) -> ModelVersion:
        """Remove tag `key` of a version (a key it does not have is a no-op)."""
        return self._backend.call(ops.DELETE_MODEL_VERSION_TAG, name=name, version=version, key=key)

    def update_version(
        self,
        name: str,
        version: int,
        *,
        status: str | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        """Set the status (`READY`, `ARCHIVED`), description and/or tags (merged) of a version."""
        return self._backend.call(
            ops.UPDATE_MODEL_VERSION, name=name, version=version, status=status, description=description, tags=tags
        )

    def versions(
        self, name: str, filter: str | None = None, order_by: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """Every version of model `name` matching `filter`, newest first unless `order_by` says otherwise."""
        found: list[ModelVersion] = []
        token: str | None = None
        while True:
            page = self._backend.call(
                ops.LIST_MODEL_VERSIONS, name=name, filter=filter, order_by=order_by, max_results=1000, page_token=token
            )
            found += page.items
            if page.next_page_token is None:
                return found
            token = page.next_page_token

    def search_versions(
        self,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """One page of versions of any model matching `filter` (`attributes.name`, `version`, `run_id`,
        `status`, `flavor`, `created_at`, `tags.<k>`, `metrics.<k>` as snapshotted at registration)."""
        return self._backend.call(
            ops.SEARCH_MODEL_VERSIONS,
            filter=filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
        )

    def set_alias(
        self, name: str, alias: str, version: int, reason: str | None = None, override_reason: str | None = None
    ) -> ModelVersion:
        """Point `alias` (e.g. `champion`) at `version`, atomically; the move is audited with `reason`. An alias
        that requires a passed gate refuses a version without one (`GateRequired`) unless an admin gives
        `override_reason`."""
        return self._backend.call(
            ops.SET_MODEL_ALIAS, name=name, alias=alias, version=version, reason=reason, override_reason=override_reason
        )

    def alias_history(self, name: str, limit: int = 100) -> list[AliasChange]:
        """Every move of the model's aliases, newest first, with who moved it and why."""
        return self._backend.call(ops.MODEL_ALIAS_HISTORY, name=name, limit=limit)

    def get_alias(self, name: str, alias: str) -> ModelVersion:
        """The version `alias` points at (`AliasNotFound` if it points nowhere)."""
        return self._backend.call(ops.GET_MODEL_ALIAS, name=name, alias=alias)

    def delete_alias(self, name: str, alias: str, reason: str | None = None) -> int:
        """Remove `alias`; returns the version it pointed at."""
        return self._backend.call(ops.DELETE_MODEL_ALIAS, name=name, alias=alias, reason=reason)

    def resolve(self, uri: str, alias_or_version: str | int | None = None) -> ModelVersion:
        """The version `models:/name@alias`, `models:/name/3` or `models:/name@latest` names (the
        `models:/` prefix is optional; or pass a name and `alias_or_version`)."""
        if isinstance(alias_or_version, bool):
            raise InvalidInput(f"a version must be an integer or an alias, got {alias_or_version!r}")
        return self._backend.call(ops.RESOLVE_MODEL_VERSION, uri_or_name=uri, alias_or_version=alias_or_version)

    def log(
        self,
        run_id: str,
        model: object,
        name: str,
        *,
        input_example: object = None,
        datasets: Mapping[str, Any] | None = None,
        register: bool = False,
        artifact_path: str | None = None,
        flavor: str | None = None,
        description: str | None = None,
        contract: Contract | str | os.PathLike[str] | None = None,
    ) -> ModelVersion | LoggedModel:
        """Save `model` as a package under run `run_id` (`models/<name>`); with `register`, as the next
        version of `name`. The signature is inferred from `input_example` and the model's prediction; `contract`
        (a `Contract`, a YAML path or text) goes in the package and is checked on every serving request."""
        from loopml.client.model_packages import log_model

        return log_model(
            self._client,
            run_id,
            model,
            name,
            input_example=input_example,
            datasets=datasets,
            register=register,
            artifact_path=artifact_path,
            flavor=flavor,
            description=description,
            contract=contract,
        )

    def register(self, source: LoggedModel | str, name: str, description: str | None = None) -> ModelVersion:
        """Register a package logged earlier (`LoggedModel`, or `runs:/<run_id>/models/<name>`) as the next
        version of `name`; its manifest's sha256 is what the version pins."""
        from loopml.client.model_packages import register

        return register(self._client, source, name, description)

    def download(self, reference: str, dest: str | Path | None = None) -> Path:
        """The verified package directory of `models:/name@alias` (or `/3`), cached by content; copied to
        `dest` if given."""
        from loopml.client.model_packages import download

        cached = download(self._client, self.resolve(reference), self._client.cache_dir / "models")
        if dest is None:
            return cached
        target = Path(dest)
        shutil.copytree(cached, target, dirs_exist_ok=True)
        return target

    def load(
        self,
        reference: str | Path,
        *,
        trust_pickle: bool = False,
        extra_columns: Literal["drop", "error"] = "drop",
    ) -> LoadedModel:
        """Load `models:/name@alias`, `models:/name/3`, `models:/name@latest` or a package directory; every
        file is verified against the registry's digest first. Pickle-based flavors need `trust_pickle`."""
        from loopml.client.model_packages import load

        return load(
            self._client,
            reference,
            self._client.cache_dir / "models",
            trust_pickle=trust_pickle,
            extra_columns=extra_columns,
        )

    def import_mlflow(
        self,
        source: str | Path,
        name: str | None = None,
        *,
        experiment: str = "mlflow-imports",
        trust_pickle: bool = False,
    ) -> ModelVersion | LoggedModel:
        """Convert an MLflow model directory (sklearn, xgboost or lightgbm flavor) into a loopml package and log
        it to a new run of `experiment`; registered as `name` when a name is given."""
        from loopml.client.model_packages import publish
        from loopml.registry import import_mlflow

        label = Path(str(source)).name
        with tempfile.TemporaryDirectory(prefix="loopml-mlflow-") as scratch:
            package = import_mlflow(source, Path(scratch) / "package", trust_pickle=trust_pickle)
            run = self._client.runs.create(experiment, f"import-{label}", tags={"loopml.source.mlflow": str(source)})
            try:
                prefix = f"models/{name or label}"
                logged = publish(self._client, run.id, package, name or label, prefix, register=name is not None)
            except BaseException:
                self._client.runs.end(run.id, "FAILED")
                raise
            self._client.runs.end(run.id)
        return logged

    def list(self, filter: str | None = None, order_by: Sequence[str] | None = None) -> list[RegisteredModel]:
        """Every model matching `filter` (all pages)."""
        found: list[RegisteredModel] = []
        token: str | None = None
        while True:
            page = self.search(filter, order_by, 1000, token)
            found += page.items
            if page.next_page_token is None:
                return found
            token = page.next_page_token
