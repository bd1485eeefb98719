"""The loopml model package: a directory of flavor files, an input example and `loopml-model.json`.

`save_model` writes the flavor's files and the input example, hashes every file, and writes the manifest
last. `load_model` works on any such directory, with no server: it verifies every file against the manifest
(and the manifest against the registry's digest when given) before anything is loaded, asks for the pickle
opt-in when the flavor needs pickle, and returns a `LoadedModel` whose `predict` enforces the signature.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from loopml.errors import ArtifactCorrupted, InvalidInput
from loopml.registry.flavors import Flavor, Predictor, flavor_for, get_flavor
from loopml.registry.manifest import (
    MANIFEST_FILE,
    DatasetRef,
    FileEntry,
    Manifest,
    check_package_path,
    read_manifest_bytes,
)
from loopml.registry.pickle_guard import check_pickle_allowed
from loopml.registry.signature import ExtraColumns, Signature, infer_signature

__all__ = [
    "INPUT_EXAMPLE_FILE",
    "KEY_PACKAGES",
    "LoadedModel",
    "ModelPackage",
    "load_model",
    "save_model",
    "verify_package",
]

INPUT_EXAMPLE_FILE = "input_example.json"
KEY_PACKAGES = (
    "loopml",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "skops",
    "xgboost",
    "lightgbm",
    "onnx",
    "onnxruntime",
    "cloudpickle",
)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelPackage:
    """A saved package: its directory, its manifest, and `digest`, the sha256 of its manifest file.

    The manifest lists the sha256 of every other file, so `digest` identifies the whole package.
    """

    directory: Path
    manifest: Manifest
    digest: str


class LoadedModel:
    """A verified, loaded package. `predict` enforces the signature; `predict_raw` skips it."""

    def __init__(self, directory: Path, manifest: Manifest, predictor: Predictor, extra_columns: ExtraColumns) -> None:
        self.directory = directory
        self.manifest = manifest
        self._predictor = predictor
        self._extra_columns: ExtraColumns = extra_columns

    @property
    def signature(self) -> Signature | None:
        return self.manifest.signature

    @property
    def native(self) -> Any:
        """The library's own model object (a scikit-learn estimator, an xgboost model, an ONNX session...)."""
        return self._predictor.native

    @property
    def input_example(self) -> list[dict[str, Any]] | None:
        """The input example saved with the model, as records."""
        if self.manifest.input_example is None:
            return None
        records: list[dict[str, Any]] = json.loads((self.directory / self.manifest.input_example).read_text())
        return records

    def predict(self, data: object, params: Mapping[str, object] | None = None) -> np.ndarray[Any, Any]:
        """Predict on a DataFrame, a 2-D numpy array, a list of dicts or a dict, after checking the signature."""
        signature = self.manifest.signature
        if signature is None:
            return self._predictor.predict(data, params)
        return self._predictor.predict(signature.enforce(data, self._extra_columns), signature.enforce_params(params))

    def predict_raw(self, data: object, params: Mapping[str, object] | None = None) -> np.ndarray[Any, Any]:
        """Predict without checking the signature (for benchmarks, and inputs already checked)."""
        return self._predictor.predict(data, params)

    def warm_up(self) -> None:
        """Prepare for many predictions (a serving replica calls it once per loaded version): a flavor that has
        something to build ahead, like the compiled trees' leaf masks, builds it now. Predictions are the same."""
        warm_up = getattr(self._predictor, "warm_up", None)
        if callable(warm_up):
            warm_up()

    @property
    def classes(self) -> list[Any] | None:
        """A classifier's class labels, in the order of `predict_proba`'s columns; None for other models."""
        classes = getattr(self._predictor, "classes", None)
        found: list[Any] | None = classes() if callable(classes) else None
        return found

    def predict_proba(self, data: object) -> np.ndarray[Any, Any]:
        """Class probabilities, (rows, classes) in the order of `classes`, after checking the signature.

        `InvalidInput` for a model that has none (a regressor, a Booster, an ONNX graph).
        """
        signature = self.manifest.signature
        return self.predict_proba_raw(data if signature is None else signature.enforce(data, self._extra_columns))

    def predict_proba_raw(self, data: object) -> np.ndarray[Any, Any]:
        """`predict_proba` without checking the signature (inputs already checked)."""
        if self.classes is None:
            raise InvalidInput(
                f"this {self.manifest.flavor} model has no predict_proba (it is not a classifier that gives "
                "probabilities): ask for predictions instead"
            )
        return np.asarray(self._predictor.predict_proba(data))  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"LoadedModel(flavor={self.manifest.flavor!r}, directory={str(self.directory)!r})"


def save_model(
    model: object,
    directory: str | os.PathLike[str],
    *,
    input_example: object = None,
    signature: Signature | None = None,
    flavor: str | Flavor | None = None,
    source_run_id: str | None = None,
    datasets: Iterable[DatasetRef] = (),
    metrics: Mapping[str, float] | None = None,
    extra_files: Mapping[str, str | os.PathLike[str] | bytes] | None = None,
    reference_profile_id: str | None = None,
) -> ModelPackage:
    """Save `model` as a package in `directory` (new or empty); the flavor is chosen by type unless given.

    With an `input_example` and no `signature`, the signature is inferred from the example and the model's
    prediction on it. `extra_files` maps package-relative names to source paths or bytes.
    """
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidInput(f"cannot save a model into {target}: it exists and is not an empty directory")
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        return _save(
            model,
            target,
            input_example,
            signature,
            flavor,
            source_run_id,
            datasets,
            metrics,
            extra_files,
            reference_profile_id,
        )
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for child in target.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        raise


def _save(
    model: object,
    target: Path,
    input_example: object,
    signature: Signature | None,
    flavor: str | Flavor | None,
    source_run_id: str | None,
    datasets: Iterable[DatasetRef],
    metrics: Mapping[str, float] | None,
    extra_files: Mapping[str, str | os.PathLike[str] | bytes] | None,
    reference_profile_id: str | None,
) -> ModelPackage:
    chosen = flavor_for(model) if flavor is None else get_flavor(flavor) if isinstance(flavor, str) else flavor
    if not chosen.accepts(model):
        raise InvalidInput(f"the {chosen.name} flavor cannot save a {type(model).__qualname__}")
    if metrics is not None and not all(isinstance(v, int | float) and math.isfinite(v) for v in metrics.values()):
        raise InvalidInput("metrics saved with a model must be finite numbers")
    saved = chosen.save(model, target)
    example_file = None
    if input_example is not None:
        example_file = INPUT_EXAMPLE_FILE
        (target / example_file).write_text(json.dumps(_records(input_example), allow_nan=False, default=_json_value))
    for name, source in (extra_files or {}).items():
        check_package_path(name)
        path = target / name
        if path.exists():
            raise InvalidInput(f"extra file {name!r} collides with a file of the package")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            path.write_bytes(source)
        else:
            shutil.copyfile(source, path)
    manifest = Manifest(
        flavor=chosen.name,
        loader=chosen.loader,
        files=_hash_files(target),
        signature=signature,
        input_example=example_file,
        python_version=platform.python_version(),
        packages=_package_versions(),
        source_run_id=source_run_id,
        datasets=tuple(datasets),
        metrics=None if metrics is None else {k: float(v) for k, v in metrics.items()},
        reference_profile_id=reference_profile_id,
        created_at=int(time.time() * 1000),
        requires_pickle=chosen.requires_pickle,
        trusted_types=saved.trusted_types,
        flavor_options=dict(saved.options),
    )
    if signature is None and input_example is not None:
        manifest = _with_inferred_signature(chosen, target, manifest, input_example)
    digest = manifest.write(target)
    return ModelPackage(target, manifest, digest)


def _with_inferred_signature(flavor: Flavor, target: Path, manifest: Manifest, example: object) -> Manifest:
    """Infer the inputs from the example, then the outputs from the saved model's prediction on it."""
    from dataclasses import replace

    inputs = infer_signature(example)
    manifest = replace(manifest, signature=inputs)
    if flavor.requires_pickle:
        check_pickle_allowed(trust_pickle=True)  # our own bytes; still never in a process that forbade pickle
    prediction = flavor.load(target, manifest).predict(inputs.enforce(example))
    return replace(manifest, signature=infer_signature(example, prediction))


def verify_package(directory: str | os.PathLike[str], *, expected_digest: str | None = None) -> Manifest:
    """Check a package before loading anything from it; return its manifest.

    The manifest must be valid and name a known flavor; every listed file must be present with its size and
    sha256, and no other file may be there (`ArtifactCorrupted` naming the file). With `expected_digest` (the
    registry's sha256 of the manifest) the manifest itself must match it too.
    """
    root = Path(directory)
    data = read_manifest_bytes(root)
    if expected_digest is not None and hashlib.sha256(data).hexdigest() != expected_digest:
        raise ArtifactCorrupted(f"{MANIFEST_FILE}: sha256 does not match the registry's digest {expected_digest}")
    manifest = Manifest.parse(data)
    flavor = get_flavor(manifest.flavor)
    if manifest.loader != flavor.loader:
        raise InvalidInput(
            f"{MANIFEST_FILE}: loader {manifest.loader!r} does not match flavor {flavor.name!r} ({flavor.loader})"
        )
    if flavor.requires_pickle and not manifest.requires_pickle:
        raise InvalidInput(f"{MANIFEST_FILE}: flavor {flavor.name!r} needs pickle but requires_pickle is false")
    if manifest.input_example is not None and manifest.input_example not in manifest.files:
        raise InvalidInput(f"{MANIFEST_FILE}: input_example {manifest.input_example!r} is not a listed file")
    for name in _walk(root):
        if name != MANIFEST_FILE and name not in manifest.files:
            raise ArtifactCorrupted(f"{name}: file is not listed in the manifest (the package was modified)")
    for name, entry in manifest.files.items():
        path = root / name
        if path.is_symlink() or not path.is_file():
            raise ArtifactCorrupted(f"{name}: file listed in the manifest is missing")
        size = path.stat().st_size
        if size != entry.size:
            raise ArtifactCorrupted(f"{name}: size {size} differs from the manifest's {entry.size} (file changed)")
        if _sha256(path) != entry.sha256:
            raise ArtifactCorrupted(f"{name}: sha256 does not match the manifest (the file was changed or corrupted)")
    return manifest


def load_model(
    directory: str | os.PathLike[str],
    *,
    trust_pickle: bool = False,
    extra_columns: ExtraColumns = "drop",
    expected_digest: str | None = None,
) -> LoadedModel:
    """Verify, then load a package directory. Pickle-based flavors need `trust_pickle=True`
    (or LOOPML_TRUST_PICKLE=1), and never load in a process that called `forbid_pickle_in_this_process`.
    """
    if extra_columns not in ("drop", "error"):
        raise InvalidInput(f"extra_columns must be 'drop' or 'error', got {extra_columns!r}")
    root = Path(directory)
    manifest = verify_package(root, expected_digest=expected_digest)
    flavor = get_flavor(manifest.flavor)
    if manifest.requires_pickle:
        check_pickle_allowed(trust_pickle)
    try:
        predictor = flavor.load(root, manifest)
    except FileNotFoundError as exc:
        raise InvalidInput(f"the package lacks a file its {flavor.name} flavor needs: {exc.filename}") from None
    return LoadedModel(root, manifest, predictor, extra_columns)


def _walk(root: Path) -> list[str]:
    names = []
    for folder, subfolders, files in os.walk(root):
        for name in [*subfolders, *files]:
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                raise ArtifactCorrupted(f"{relative}: symbolic links are not allowed in a model package")
            if name in files:
                names.append(relative)
    return sorted(names)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_files(root: Path) -> dict[str, FileEntry]:
    return {
        name: FileEntry(_sha256(root / name), (root / name).stat().st_size)
        for name in _walk(root)
        if name != MANIFEST_FILE
    }


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _records(example: object) -> list[dict[str, Any]]:
    """An input example as JSON-ready records (column names as the signature names them)."""
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(example, pd.DataFrame):
        records: list[dict[str, Any]] = json.loads(example.to_json(orient="records", date_format="iso"))
        return records
    if isinstance(example, np.ndarray):
        if example.ndim != 2:
            raise InvalidInput(f"an array input example must be 2-D, got shape {example.shape}")
        return [{str(i): _clean(value) for i, value in enumerate(row)} for row in example.tolist()]
    if isinstance(example, dict):
        example = [example]
    if isinstance(example, list) and all(isinstance(row, dict) for row in example):
        return [{name: _clean(value) for name, value in row.items()} for row in example]
    raise InvalidInput(
        f"input_example must be a DataFrame, a 2-D array, a list of dicts or a dict, got {type(example)}"
    )


def _clean(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def _json_value(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
