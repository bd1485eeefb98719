"""Moving model packages between a process and a store: `log_model`, `download`, `load`.

A package is uploaded as run artifacts under one prefix (every file first, the manifest last) and a
version records the manifest's sha256. Downloads fetch the manifest, check it against that digest, then
fetch exactly the files it lists into a local cache keyed by the digest, and verify the whole package
before anything is loaded from it. A cached package is verified again on every load.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopml.domain import ModelVersion
from loopml.errors import ArtifactCorrupted, InvalidInput

if TYPE_CHECKING:
    from loopml.client.client import Client
    from loopml.data import Contract
    from loopml.registry import LoadedModel, ModelPackage

MANIFEST = "loopml-model.json"


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """A model package logged to a run but not registered (pass `register=True` to get a version)."""

    run_id: str
    artifact_path: str
    manifest_digest: str
    flavor: str

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/{self.artifact_path}"


def log_model(
    client: Client,
    run_id: str,
    model: object,
    name: str,
    *,
    input_example: object = None,
    datasets: Mapping[str, Any] | None = None,
    register: bool = False,
    artifact_path: str | None = None,
    signature: Any = None,
    flavor: str | None = None,
    description: str | None = None,
    contract: Contract | str | os.PathLike[str] | None = None,
) -> ModelVersion | LoggedModel:
    """Save `model` as a package, upload it to run `run_id` under `models/<name>`, and with `register`
    create the next version of registered model `name`. `datasets` maps roles ("training",
    "validation", ...) to data, logged to the run by fingerprint and named in the manifest. A registered
    version with `training` data gets its reference profile for monitoring (see `store_reference_profile`).
    `contract` (a `Contract`, a path to its YAML, or the YAML text) goes in the package as `contract.yaml`:
    serving checks every request against it."""
    from loopml.registry import DatasetRef, save_model

    extra_files = {CONTRACT_FILE: contract_yaml(contract).encode()} if contract is not None else None
    client.metrics.flush()
    run = client.runs.get(run_id)
    refs = []
    for role, data in (datasets or {}).items():
        logged = client.runs.log_dataset(run_id, data, name=f"{name}-{role}", role=role)
        refs.append(DatasetRef(digest=logged.digest, role=role, name=logged.name))
    prefix = artifact_path or f"models/{name}"
    with tempfile.TemporaryDirectory(prefix="loopml-model-") as scratch:
        package = save_model(
            model,
            Path(scratch) / "package",
            input_example=input_example,
            signature=signature,
            flavor=flavor,
            source_run_id=run_id,
            datasets=refs,
            metrics=run.metrics or None,
            extra_files=extra_files,
        )
        result = publish(client, run_id, package, name, prefix, register=register, description=description)
    training = (datasets or {}).get("training")
    if isinstance(result, ModelVersion) and training is not None:
        store_reference_profile(client, result, model, training)
    return result


CONTRACT_FILE = "contract.yaml"  # the name serving looks for (loopml.serving.predictors.CONTRACT_FILE)


def contract_yaml(contract: Contract | str | os.PathLike[str]) -> str:
    """The YAML text of `contract`: a `Contract`, a path to a YAML file, or YAML text; checked by parsing it."""
    from loopml.data import Contract

    if isinstance(contract, Contract):
        return contract.to_yaml()
    if isinstance(contract, os.PathLike) or (isinstance(contract, str) and "\n" not in contract):
        path = Path(contract)
        if not path.is_file():
            raise InvalidInput(f"contract: no file {str(path)!r} (pass a Contract, a YAML file's path or YAML text)")
        text, source = path.read_text(encoding="utf-8"), str(path)
    elif isinstance(contract, str):
        text, source = contract, "contract"
    else:
        raise InvalidInput(f"contract must be a Contract, a path or YAML text, got {type(contract).__name__}")
    Contract.from_yaml(text, source=source)  # a malformed contract fails here, not on the serving replica
    return text


def store_reference_profile(client: Client, version: ModelVersion, model: object, training: Any) -> None:
    """Store the profile of the training data, with the model's predictions on it as the `prediction` column
    (when the model predicts a DataFrame), as the version's reference profile for monitoring.

    The label is the one training column the model does not take as a feature (by `feature_names_in_`), if any.
    """
    import pandas as pd

    from loopml.data import build_profile

    prediction: str | None = None
    label: str | None = None
    frame = training
    if isinstance(training, pd.DataFrame) and callable(getattr(model, "predict", None)):
        names = getattr(model, "feature_names_in_", None)
        features = training[list(names)] if names is not None else training
        if names is not None:
            rest = [c for c in training.columns if c not in set(names)]
            label = rest[0] if len(rest) == 1 else None
        if "prediction" not in training.columns:
            try:
                predicted = model.predict(features)  # type: ignore[attr-defined]
            except Exception as exc:  # a model that cannot score its own training frame: profile without it
                warnings.warn(f"reference profile of {version.uri} has no predictions: {exc}", stacklevel=3)
            else:
                if getattr(predicted, "ndim", 1) == 1:  # class labels or values; not a matrix of scores
                    frame = training.assign(prediction=predicted)
                    prediction = "prediction"
    profile = build_profile(frame, prediction_column=prediction, label_column=label)
    client.monitors.set_reference_profile(version.name, version.version, profile)


def publish(
    client: Client,
    run_id: str,
    package: ModelPackage,
    name: str,
    prefix: str,
    *,
    register: bool,
    description: str | None = None,
) -> ModelVersion | LoggedModel:
    """Upload a saved package to run `run_id` under `prefix`; with `register`, as the next version of `name`."""
    files = sorted(package.manifest.files)  # the manifest goes last: a package is complete once it is there
    for relative in [*files, MANIFEST]:
        client.runs.log_artifact(run_id, package.directory / relative, f"{prefix}/{relative}")
    manifest = package.manifest
    if not register:
        return LoggedModel(run_id=run_id, artifact_path=prefix, manifest_digest=package.digest, flavor=manifest.flavor)
    project = client.experiments.get(client.runs.get(run_id).experiment_id).project
    client.models.create(name, project, exist_ok=True)
    return client.models.create_version(
        name,
        run_id,
        prefix,
        package.digest,
        manifest.flavor,
        signature=manifest.signature.to_dict() if manifest.signature else None,
        description=description,
    )


def download(client: Client, version: ModelVersion, cache_dir: Path) -> Path:
    """The verified package directory of `version`, downloaded into `cache_dir` unless already there."""
    from loopml.registry import verify_package

    target = cache_dir / version.manifest_digest
    if target.is_dir():
        verify_package(target, expected_digest=version.manifest_digest)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f".{version.manifest_digest}.{uuid.uuid4().hex}"
    try:
        manifest_path = client.runs.download_artifact(version.run_id, f"{version.artifact_path}/{MANIFEST}", partial)
        fetched = partial / version.artifact_path
        manifest_file = fetched / MANIFEST
        if manifest_path != manifest_file:  # pragma: no cover - download_artifact keeps the relative path
            raise InvalidInput(f"unexpected download location {manifest_path}")
        from loopml.registry import Manifest

        manifest = Manifest.parse(manifest_file.read_bytes())
        for relative in manifest.files:
            client.runs.download_artifact(version.run_id, f"{version.artifact_path}/{relative}", partial)
        try:
            verify_package(fetched, expected_digest=version.manifest_digest)
        except ArtifactCorrupted as exc:
            raise ArtifactCorrupted(
                f"the package of {version.uri} in run {version.run_id} no longer matches what was registered "
                f"({exc}); was an artifact under {version.artifact_path!r} overwritten?"
            ) from None
        try:
            os.replace(fetched, target)
        except OSError:
            if not target.is_dir():  # another process published the same package first: keep theirs
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def load(
    client: Client,
    reference: str | os.PathLike[str],
    cache_dir: Path,
    *,
    trust_pickle: bool = False,
    extra_columns: Literal["drop", "error"] = "drop",
) -> LoadedModel:
    """Load `models:/name@alias`, `models:/name/3` or a local package directory."""
    from loopml.registry import load_model

    if isinstance(reference, os.PathLike) or (isinstance(reference, str) and Path(reference).is_dir()):
        return load_model(reference, trust_pickle=trust_pickle, extra_columns=extra_columns)
    version = client.models.resolve(str(reference))
    directory = download(client, version, cache_dir)
    return load_model(
        directory, trust_pickle=trust_pickle, extra_columns=extra_columns, expected_digest=version.manifest_digest
    )


def register(client: Client, source: LoggedModel | str, name: str, description: str | None = None) -> ModelVersion:
    """The next version of `name` from a logged package: a `LoggedModel` or `runs:/<run_id>/<path>`."""
    from loopml.registry import Manifest

    if isinstance(source, LoggedModel):
        run_id, prefix = source.run_id, source.artifact_path
    else:
        if not isinstance(source, str) or not source.startswith("runs:/") or source.count("/") < 2:
            raise InvalidInput(f"register takes a LoggedModel or runs:/<run_id>/<path>, got {source!r}")
        run_id, _, prefix = source[len("runs:/") :].partition("/")
    with tempfile.TemporaryDirectory(prefix="loopml-manifest-") as scratch:
        path = client.runs.download_artifact(run_id, f"{prefix.rstrip('/')}/{MANIFEST}", scratch)
        data = path.read_bytes()
    manifest = Manifest.parse(data)
    project = client.experiments.get(client.runs.get(run_id).experiment_id).project
    client.models.create(name, project, exist_ok=True)
    return client.models.create_version(
        name,
        run_id,
        prefix.rstrip("/"),
        hashlib.sha256(data).hexdigest(),
        manifest.flavor,
        signature=manifest.signature.to_dict() if manifest.signature else None,
        description=description,
    )
