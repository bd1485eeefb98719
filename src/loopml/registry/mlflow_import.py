"""Bring a model saved by MLflow (an `MLmodel` directory) into a loopml package, without importing mlflow.

Supported flavors: `sklearn`, `xgboost` and `lightgbm`, in every serialization MLflow 3 writes. Files in a
safe format (skops, XGBoost JSON/UBJ, LightGBM text) load without the pickle opt-in: a skops file is
loaded trusting only the types loopml's own sklearn flavor trusts (never the `skops_trusted_types` list of
the MLmodel, which whoever wrote the file controls), plus, for LightGBM's scikit-learn wrappers, a fixed list
of LightGBM classes. Pickle and cloudpickle files load only with `trust_pickle=True`.

The model is then saved with loopml's own flavor, in its safe format where there is one (a pickled
scikit-learn tree becomes a skops file), with MLflow's signature and input example. The original `MLmodel`
is kept in the package as `mlflow/MLmodel`, and `mlflow/import.json` records where the model came from.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from loopml.errors import InvalidInput, PermissionDenied, UserCodeError
from loopml.registry.flavors import flavor_for
from loopml.registry.flavors.sklearn_flavor import SAFE_ROOTS, is_safe_type
from loopml.registry.flavors.xgboost_flavor import MODEL_CLASSES as XGBOOST_CLASSES
from loopml.registry.package import ModelPackage, save_model
from loopml.registry.pickle_guard import check_pickle_allowed
from loopml.registry.signature import COLUMN_DTYPES, ColumnSpec, OutputSpec, ParamSpec, Signature

__all__ = ["LIGHTGBM_SKOPS_TYPES", "MLMODEL_FILE", "SUPPORTED_FLAVORS", "import_mlflow"]

MLMODEL_FILE = "MLmodel"
SUPPORTED_FLAVORS = ("sklearn", "xgboost", "lightgbm")
# LightGBM's scikit-learn wrappers, saved by mlflow.lightgbm with skops: the wrapper holds a Booster, whose
# state is the model text (parsed as a `.lgb` file is). Any other type in the file stays untrusted.
LIGHTGBM_SKOPS_TYPES = frozenset(
    {
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRanker",
    }
)
_MAX_MLMODEL_BYTES = 1 << 20
_MAX_EXAMPLE_BYTES = 16 << 20
_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_COLUMN_TYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "string",
    "datetime": "datetime",
}
_PARAM_TYPES = {"double": "float64", "float": "float64", "long": "int64", "integer": "int64"}
_PARAM_TYPES |= {"boolean": "bool", "string": "string"}
_TENSOR_TYPES = {f"{kind}{bits}" for kind in ("int", "uint") for bits in (8, 16, 32, 64)} | {"float32", "float64"}
_TENSOR_TYPES |= {"bool"}
_PICKLE_FORMATS = ("pickle", "cloudpickle")


def import_mlflow(
    source: str | os.PathLike[str], destination: str | os.PathLike[str], *, trust_pickle: bool = False
) -> ModelPackage:
    """Import the MLflow model directory `source` (a local path or a `file://` URI) as a package in `destination`.

    `destination` must be new or empty. Models MLflow stored with pickle or cloudpickle load only with
    `trust_pickle=True` (or LOOPML_TRUST_PICKLE=1); the package written is then in a safe format whenever
    loopml's flavor has one, so loading it later needs no opt-in.

    >>> import_mlflow("s3://bucket/model", "pkg")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    loopml.errors.InvalidInput: cannot import s3://bucket/model: ... download it first, e.g. with `mlflow artifacts ...`
    """
    root = _local_directory(source)
    spec = _read_mlmodel(root)
    flavors = spec.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        raise InvalidInput(f"{root / MLMODEL_FILE}: no 'flavors' section (is this an MLflow model?)")
    name = next((f for f in SUPPORTED_FLAVORS if f in flavors), None)
    if name is None:
        raise InvalidInput(
            f"{root / MLMODEL_FILE}: no supported flavor; found {', '.join(map(str, flavors))}, "
            f"loopml imports {', '.join(SUPPORTED_FLAVORS)}"
        )
    config = flavors[name]
    if not isinstance(config, dict):
        raise InvalidInput(f"{root / MLMODEL_FILE}: flavors.{name} must be a mapping")
    signature = _signature(spec.get("signature"), root)
    example = _input_example(spec, root, signature)
    importer = {"sklearn": _import_sklearn, "xgboost": _import_xgboost, "lightgbm": _import_lightgbm}[name]
    data_key = "pickled_model" if name == "sklearn" else "data"
    data_file = _model_file(root, config, data_key, name)
    model, flavor = importer(data_file, config, trust_pickle)
    provenance = {
        "source": root.as_uri(),
        "mlflow_flavor": name,
        "mlflow_version": spec.get("mlflow_version"),
        "model_uuid": spec.get("model_uuid"),
        "run_id": spec.get("run_id"),
        "model_file": data_file.relative_to(root).as_posix(),
        "model_file_sha256": _sha256(data_file),
    }
    extra: dict[str, Path | bytes] = {
        "mlflow/MLmodel": root / MLMODEL_FILE,
        "mlflow/import.json": json.dumps(provenance, indent=2).encode(),
    }
    return _save(model, destination, flavor, signature, example, extra)


# --- source ----------------------------------------------------------------------------------------------


def _local_directory(source: str | os.PathLike[str]) -> Path:
    if isinstance(source, str):
        match = _URI.match(source)
        if match is not None and match.group(1).lower() == "file":
            parsed = urlparse(source)
            if parsed.netloc not in ("", "localhost"):
                raise InvalidInput(f"cannot import {source}: a file:// URI must name a local path (no host)")
            path = Path(unquote(parsed.path))
        elif match is not None:
            raise InvalidInput(
                f"cannot import {source}: loopml reads local MLflow model directories only and does not fetch "
                "remote URLs; download it first, e.g. with "
                f"`mlflow artifacts download --artifact-uri {source} --dst-path ./model`"
            )
        else:
            path = Path(source)
    else:
        path = Path(source)
    if path.is_file() and path.name == MLMODEL_FILE:
        path = path.parent
    if not path.is_dir():
        raise InvalidInput(f"cannot import {path}: no such directory")
    return path.resolve()


def _read_mlmodel(root: Path) -> dict[str, Any]:
    import yaml

    path = root / MLMODEL_FILE
    if not path.is_file():
        raise InvalidInput(f"{root} is not an MLflow model directory: it has no {MLMODEL_FILE} file")
    if path.stat().st_size > _MAX_MLMODEL_BYTES:
        raise InvalidInput(f"{path}: larger than {_MAX_MLMODEL_BYTES} bytes; not an MLmodel file")
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(spec, dict):
        raise InvalidInput(f"{path}: expected a YAML mapping, got {type(spec).__name__}")
    return spec


def _model_file(root: Path, config: Mapping[str, Any], key: str, flavor: str) -> Path:
    """The flavor's model file, which must be a plain file inside the model directory."""
    name = config.get(key)
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{root / MLMODEL_FILE}: flavors.{flavor}.{key} must name the model file")
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path == root:
        raise InvalidInput(f"{root / MLMODEL_FILE}: flavors.{flavor}.{key} {name!r} points outside the model directory")
    if not path.is_file():
        raise InvalidInput(f"{root}: the model file {name!r} named by flavors.{flavor}.{key} is missing")
    return path


# --- flavors ---------------------------------------------------------------------------------------------


def _import_sklearn(path: Path, config: Mapping[str, Any], trust_pickle: bool) -> tuple[Any, str | None]:
    # MLflow writes no serialization_format before 1.x and reads such models as pickle: so do we.
    serialization = config.get("serialization_format", "pickle")
    if serialization == "skops":
        return _load_skops(path, frozenset(), trust_pickle), None
    if serialization in _PICKLE_FORMATS:
        return _unpickle(path, trust_pickle, "scikit-learn"), None
    raise InvalidInput(f"sklearn flavor: unknown serialization_format {serialization!r} (expected skops or pickle)")


def _import_xgboost(path: Path, config: Mapping[str, Any], trust_pickle: bool) -> tuple[Any, str | None]:  # noqa: ARG001 - native formats only
    model_class = config.get("model_class", "xgboost.core.Booster")
    if not isinstance(model_class, str):
        raise InvalidInput("xgboost flavor: model_class must be a string")
    module, _, class_name = model_class.rpartition(".")
    if not module.startswith("xgboost") or class_name not in XGBOOST_CLASSES:
        raise InvalidInput(f"xgboost flavor: unsupported model_class {model_class!r}; loopml imports {XGBOOST_CLASSES}")
    xgb = _library("xgboost")
    model = getattr(xgb, class_name)()
    try:
        model.load_model(str(path))
    except xgb.core.XGBoostError as exc:
        raise InvalidInput(f"xgboost flavor: cannot read {path.name}: {str(exc).splitlines()[0]}") from None
    return model, "xgboost"


def _import_lightgbm(path: Path, config: Mapping[str, Any], trust_pickle: bool) -> tuple[Any, str | None]:
    model_class = config.get("model_class", "lightgbm.basic.Booster")
    lgb = _library("lightgbm")
    if model_class == "lightgbm.basic.Booster":
        try:
            return lgb.Booster(model_file=str(path)), "lightgbm"
        except lgb.basic.LightGBMError as exc:
            raise InvalidInput(f"lightgbm flavor: cannot read {path.name}: {exc}") from None
    serialization = config.get("serialization_format", "cloudpickle")  # MLflow's default for old models
    if serialization == "skops":
        model = _load_skops(path, LIGHTGBM_SKOPS_TYPES, trust_pickle)
    elif serialization in _PICKLE_FORMATS:
        model = _unpickle(path, trust_pickle, "LightGBM")
    else:
        raise InvalidInput(f"lightgbm flavor: unknown serialization_format {serialization!r}")
    if not isinstance(model, lgb.LGBMModel | lgb.Booster):
        raise InvalidInput(f"lightgbm flavor: the file holds a {type(model).__qualname__}, not a LightGBM model")
    return model, "lightgbm"


def _load_skops(path: Path, also_trusted: frozenset[str], trust_pickle: bool) -> Any:
    """Load a skops file trusting the types loopml trusts; any other needs the pickle opt-in (it can run code)."""
    import skops.io as sio

    try:
        untrusted = sorted(sio.get_untrusted_types(file=path))
    except Exception as exc:
        raise InvalidInput(f"{path.name}: not a readable skops file ({type(exc).__name__}: {exc})") from None
    unsafe = [name for name in untrusted if not is_safe_type(name) and name not in also_trusted]
    if unsafe:
        try:
            check_pickle_allowed(trust_pickle)
        except PermissionDenied as exc:
            raise PermissionDenied(
                f"{path.name} holds types loopml does not trust ({', '.join(unsafe)}; trusted: the roots "
                f"{', '.join(SAFE_ROOTS)}); loading them can run arbitrary code: {exc}"
            ) from None
    try:
        return sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise UserCodeError(f"loading {path.name} with skops failed: {type(exc).__name__}: {exc}") from exc


def _unpickle(path: Path, trust_pickle: bool, library: str) -> Any:
    try:
        check_pickle_allowed(trust_pickle)
    except PermissionDenied as exc:
        raise PermissionDenied(f"MLflow stored this {library} model as {path.name} with pickle: {exc}") from None
    import pickle

    try:
        return pickle.loads(path.read_bytes())  # noqa: S301 - the caller opted in (check_pickle_allowed)
    except Exception as exc:
        raise UserCodeError(f"unpickling {path.name} failed: {type(exc).__name__}: {exc}") from exc


def _library(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise InvalidInput(f"importing this model needs {name}: pip install 'loopml[{name}]'") from None


def _save(
    model: Any,
    destination: str | os.PathLike[str],
    flavor: str | None,
    signature: Signature | None,
    example: list[dict[str, Any]] | None,
    extra: Mapping[str, Path | bytes],
) -> ModelPackage:
    chosen = flavor or _flavor_for_sklearn_model(model)
    return save_model(model, destination, flavor=chosen, signature=signature, input_example=example, extra_files=extra)


def _flavor_for_sklearn_model(model: Any) -> str:
    """loopml's flavor for a model MLflow saved as scikit-learn: skops when it holds only trusted types."""
    chosen = flavor_for(model).name
    if chosen != "sklearn":
        return chosen  # an xgboost or lightgbm wrapper, or an object that is no estimator (pickled)
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=sio.dumps(model))
    except Exception:  # skops cannot store it: pickle (the caller already trusted pickle)
        return "pyfunc"
    return "sklearn" if all(is_safe_type(name) for name in untrusted) else "pyfunc"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- signature and input example -------------------------------------------------------------------------


def _signature(section: object, root: Path) -> Signature | None:
    if section is None:
        return None
    where = f"{root / MLMODEL_FILE}: signature"
    if not isinstance(section, dict):
        raise InvalidInput(f"{where} must be a mapping")
    inputs_json = section.get("inputs")
    if inputs_json is None:
        return None
    inputs = _columns(_json_list(inputs_json, f"{where}.inputs"), f"{where}.inputs")
    outputs = None
    if section.get("outputs") is not None:
        outputs = _output(_json_list(section["outputs"], f"{where}.outputs"), f"{where}.outputs")
    params = None
    if section.get("params") is not None:
        params = _params(_json_list(section["params"], f"{where}.params"), f"{where}.params")
    return Signature(inputs, outputs, params)


def _json_list(text: object, where: str) -> list[Any]:
    if not isinstance(text, str):
        raise InvalidInput(f"{where} must be a JSON string, got {type(text).__name__}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidInput(f"{where} must be a JSON list of objects")
    return value


def _columns(specs: list[dict[str, Any]], where: str) -> tuple[ColumnSpec, ...]:
    if not specs:
        raise InvalidInput(f"{where} is empty")
    if specs[0].get("type") == "tensor":
        if len(specs) != 1:
            raise InvalidInput(f"{where}: several input tensors; loopml imports models that take one table")
        dtype, shape = _tensor(specs[0], where)
        if dtype not in COLUMN_DTYPES or len(shape) != 2 or shape[1] < 1:
            raise InvalidInput(f"{where}: a {dtype} tensor of shape {shape} is not a table of columns")
        return tuple(ColumnSpec(str(i), dtype) for i in range(shape[1]))
    columns = []
    for i, spec in enumerate(specs):
        mlflow_type = spec.get("type")
        if mlflow_type not in _COLUMN_TYPES:
            raise InvalidInput(
                f"{where}[{i}]: MLflow type {mlflow_type!r} has no loopml column dtype "
                f"(supported: {', '.join(_COLUMN_TYPES)})"
            )
        name = spec.get("name", str(i))
        required = spec.get("required", True)
        if not isinstance(name, str) or not isinstance(required, bool):
            raise InvalidInput(f"{where}[{i}]: name must be a string and required true or false")
        columns.append(ColumnSpec(name, _COLUMN_TYPES[mlflow_type], nullable=not required))
    return tuple(columns)


def _tensor(spec: Mapping[str, Any], where: str) -> tuple[str, tuple[int, ...]]:
    tensor = spec.get("tensor-spec")
    if not isinstance(tensor, dict):
        raise InvalidInput(f"{where}: a tensor spec needs a 'tensor-spec' object")
    dtype, shape = tensor.get("dtype"), tensor.get("shape")
    if dtype not in _TENSOR_TYPES and dtype not in ("str", "object"):
        raise InvalidInput(f"{where}: tensor dtype {dtype!r} is not supported")
    if not isinstance(shape, list) or not all(type(n) is int and n >= -1 for n in shape):
        raise InvalidInput(f"{where}: tensor shape must be a list of integers, got {shape!r}")
    return ("string" if dtype in ("str", "object") else str(dtype)), tuple(shape)


def _output(specs: list[dict[str, Any]], where: str) -> OutputSpec | None:
    if not specs:
        return None
    if specs[0].get("type") == "tensor":
        if len(specs) != 1:
            raise InvalidInput(f"{where}: several output tensors are not supported")
        dtype, shape = _tensor(specs[0], where)
        return OutputSpec(dtype, shape)
    types = {spec.get("type") for spec in specs}
    if len(types) != 1 or next(iter(types)) not in _COLUMN_TYPES:
        raise InvalidInput(f"{where}: outputs of the MLflow types {sorted(map(str, types))} are not supported")
    dtype = _COLUMN_TYPES[str(next(iter(types)))]
    return OutputSpec(dtype, (-1,) if len(specs) == 1 else (-1, len(specs)))


def _params(specs: list[dict[str, Any]], where: str) -> tuple[ParamSpec, ...]:
    params = []
    for i, spec in enumerate(specs):
        name, mlflow_type = spec.get("name"), spec.get("type")
        if not isinstance(name, str) or mlflow_type not in _PARAM_TYPES or spec.get("shape") is not None:
            raise InvalidInput(
                f"{where}[{i}]: loopml imports scalar params of the MLflow types {', '.join(_PARAM_TYPES)} only"
            )
        default = spec.get("default")
        dtype = _PARAM_TYPES[mlflow_type]
        if dtype == "float64" and isinstance(default, int) and not isinstance(default, bool):
            default = float(default)
        params.append(ParamSpec(name, dtype, default))
    return tuple(params)


def _input_example(spec: Mapping[str, Any], root: Path, signature: Signature | None) -> list[dict[str, Any]] | None:
    """The saved input example as records, or None when there is none, or it is of a kind loopml does not keep."""
    info = spec.get("saved_input_example_info")
    if info is None:
        return None
    if not isinstance(info, dict):
        raise InvalidInput(f"{root / MLMODEL_FILE}: saved_input_example_info must be a mapping")
    kind = info.get("type", "dataframe")
    if kind not in ("dataframe", "ndarray"):
        return None  # text, JSON objects, sparse matrices: not a table; the model imports without an example
    names = [info.get(key) for key in ("artifact_path", "serving_input_path")]
    present = [key for key, name in zip(("artifact_path", "serving_input_path"), names, strict=True) if name]
    if not present:
        return None
    # input_example.json, or the serving payload ({"dataframe_split": ...}) when only that one is there
    key = next((k for k in present if (root / str(info[k])).is_file()), present[0])
    path = _model_file(root, info, key, "saved_input_example_info")
    if path.stat().st_size > _MAX_EXAMPLE_BYTES:
        raise InvalidInput(f"{path}: the input example is larger than {_MAX_EXAMPLE_BYTES} bytes")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: the input example is not valid JSON ({exc})") from None
    return _records(payload, None if signature is None else list(signature.column_names), path.name)


def _records(payload: object, names: list[str] | None, where: str) -> list[dict[str, Any]]:
    """An MLflow example (split or records orient, a serving payload, or an ndarray) as a list of dicts."""
    if isinstance(payload, dict) and len(payload) == 1:
        key, value = next(iter(payload.items()))
        if key in ("dataframe_split", "dataframe_records", "instances", "inputs"):
            payload = value
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        columns = payload.get("columns")
        rows = payload["data"]
        if columns is None:
            columns = names
        if not isinstance(columns, list) or not all(isinstance(row, list) and len(row) == len(columns) for row in rows):
            raise InvalidInput(f"{where}: a split-orient example needs 'columns' and rows of that length")
        return [dict(zip(map(str, columns), row, strict=True)) for row in rows]
    if isinstance(payload, list) and payload and all(isinstance(row, dict) for row in payload):
        return [{str(k): v for k, v in row.items()} for row in payload]
    if isinstance(payload, list) and payload and all(isinstance(row, list) for row in payload):
        width = len(payload[0])
        columns = names if names is not None and len(names) == width else [str(i) for i in range(width)]
        if not all(len(row) == width for row in payload):
            raise InvalidInput(f"{where}: the rows of an array example must all have {width} values")
        return [dict(zip(columns, row, strict=True)) for row in payload]
    raise InvalidInput(f"{where}: an input example must be a table (split or records orient, or a 2-D array)")
