"""How step outputs are stored between steps: one serializer per type, content-addressed in the artifact store.

| value | serializer | stored as |
| --- | --- | --- |
| `lm.Model` | `loopml-model` | a loopml model package (every file a blob, the manifest last) |
| `lm.Dataset` | `loopml-dataset` | Parquet, plus its fingerprint (content hash, schema, rows) |
| pandas DataFrame, pyarrow Table | `parquet` | Parquet |
| numpy array (not of objects) | `npy` | `.npy`, read back without pickle |
| None, bool, int, float, str, lists and dicts of them | `json` | canonical JSON |
| anything else | `cloudpickle` | only for a step that opted in: `@lm.step(pickle=True)` |

`register_serializer` adds one (it is tried before the built-ins). The serializer's name is part of the cache
key, so changing how a type is stored invalidates what was cached.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from loopml.errors import InvalidPipeline
from loopml.pipelines.executor import ArtifactRef
from loopml.pipelines.values import Dataset, Model

__all__ = ["PICKLE", "Serializer", "dump_value", "load_value", "register_serializer", "serializer_names"]

PICKLE = "cloudpickle"


@dataclass(frozen=True)
class Serializer:
    """`accepts(value)` says whether it can store the value; `dump(value)` gives bytes, `load(bytes)` the
    value back. `dump_to`/`load_from` replace the byte versions for values stored as several blobs."""

    name: str
    accepts: Callable[[Any], bool]
    dump: Callable[[Any], bytes] | None = None
    load: Callable[[bytes], Any] | None = None
    dump_to: Callable[[Any, Any], ArtifactRef] | None = None
    load_from: Callable[[ArtifactRef, Any], Any] | None = None


def _module_of(value: Any) -> str:
    return type(value).__module__.split(".")[0]


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return abs(value) < 2**63
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_is_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _dump_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _is_frame(value: Any) -> bool:
    module = _module_of(value)
    return (module == "pandas" and type(value).__name__ == "DataFrame") or (
        module == "pyarrow" and type(value).__name__ == "Table"
    )


def _dump_parquet(value: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = value if isinstance(value, pa.Table) else pa.Table.from_pandas(value)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _load_parquet(data: bytes) -> Any:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    return table.to_pandas() if table.schema.pandas_metadata is not None else table


def _is_array(value: Any) -> bool:
    return _module_of(value) == "numpy" and type(value).__name__ == "ndarray" and value.dtype.kind != "O"


def _dump_npy(value: Any) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, value, allow_pickle=False)
    return buffer.getvalue()


def _load_npy(data: bytes) -> Any:
    import numpy as np

    return np.load(io.BytesIO(data), allow_pickle=False)


def _dump_pickle(value: Any) -> bytes:
    import cloudpickle

    return bytes(cloudpickle.dumps(value))


def _load_pickle(data: bytes) -> Any:
    import pickle

    return pickle.loads(data)  # noqa: S301 (only blobs written by a step that opted in to pickle)


def _dump_dataset(value: Dataset, store: Any) -> ArtifactRef:
    from loopml.data import fingerprint

    frame = value.data
    blob = store.put_bytes(_dump_parquet(frame))
    found = fingerprint(frame, value.name, "training", value.source)
    meta = {
        "name": value.name,
        "dataset_digest": found.digest,
        "schema": [list(column) for column in found.schema],
        "rows": found.rows,
        "source": found.source,
    }
    return ArtifactRef("loopml-dataset", blob.digest, blob.size, "Dataset", meta)


def _load_dataset(ref: ArtifactRef, store: Any) -> Dataset:
    data = _load_parquet(b"".join(store.iter_chunks(ref.digest)))
    meta = ref.meta
    return Dataset(data, name=str(meta["name"]), source=meta.get("source"), digest=str(meta["dataset_digest"]))


def _dump_model(value: Model, store: Any) -> ArtifactRef:
    from loopml.registry import save_model

    with tempfile.TemporaryDirectory(prefix="loopml-step-model-") as scratch:
        root = Path(scratch) / "package"
        package = save_model(value.native, root, input_example=value.input_example, flavor=value.flavor)
        files: dict[str, list[Any]] = {}
        manifest = None
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()
            blob = store.put_file(path)
            files[relative] = [blob.digest, blob.size]
            if relative == "loopml-model.json":
                manifest = blob
        assert manifest is not None  # save_model always writes it
    meta = {"name": value.name, "files": files, "flavor": package.manifest.flavor, "register": value.register}
    return ArtifactRef("loopml-model", manifest.digest, manifest.size, type(value.native).__name__, meta)


def _load_model(ref: ArtifactRef, store: Any) -> Model:
    from loopml.registry import load_model

    root = Path(tempfile.gettempdir()) / f"loopml-{os.getuid()}" / "step-models" / ref.digest
    for relative, (digest, _size) in ref.meta["files"].items():
        target = root / relative
        if not target.exists():
            store.get_file(digest, target)
    loaded = load_model(root, expected_digest=ref.digest)
    return Model(loaded.native, name=str(ref.meta["name"]), package=loaded, digest=ref.digest)


_BUILTIN = [
    Serializer(
        "loopml-model",
        lambda v: isinstance(v, Model),
        dump_to=_dump_model,
        load_from=_load_model,
    ),
    Serializer(
        "loopml-dataset",
        lambda v: isinstance(v, Dataset),
        dump_to=_dump_dataset,
        load_from=_load_dataset,
    ),
    Serializer("parquet", _is_frame, _dump_parquet, _load_parquet),
    Serializer("npy", _is_array, _dump_npy, _load_npy),
    Serializer("json", _is_json, _dump_json, orjson.loads),
]
_PICKLE = Serializer(PICKLE, lambda _value: True, _dump_pickle, _load_pickle)
_custom: list[Serializer] = []


def register_serializer(serializer: Serializer) -> None:
    """Store the values `serializer.accepts` with it (tried before the built-ins)."""
    _custom[:] = [s for s in _custom if s.name != serializer.name]
    _custom.insert(0, serializer)


def serializer_names() -> list[str]:
    return [s.name for s in [*_custom, *_BUILTIN, _PICKLE]]


def _by_name(name: str) -> Serializer:
    for serializer in [*_custom, *_BUILTIN, _PICKLE]:
        if serializer.name == name:
            return serializer
    raise InvalidPipeline(f"unknown serializer {name!r}: use one of {', '.join(serializer_names())}")


def dump_value(value: Any, store: Any, name: str | None, allow_pickle: bool, step: str) -> ArtifactRef:
    """Store a step's output; a value no serializer takes is an error naming the type and the ways out."""
    if name is not None:
        serializer = _by_name(name)
        if serializer.name == PICKLE and not allow_pickle:
            raise InvalidPipeline(f"step {step!r} asks for the cloudpickle serializer without pickle=True")
    else:
        found = next((s for s in [*_custom, *_BUILTIN] if s.accepts(value)), None)
        if found is None and allow_pickle:
            found = _PICKLE
        if found is None:
            raise InvalidPipeline(
                f"step {step!r} returned a {type(value).__module__}.{type(value).__qualname__}, which no serializer "
                f"stores ({', '.join(s.name for s in [*_custom, *_BUILTIN])}): return a DataFrame, array, "
                "JSON-able value, lm.Model or lm.Dataset, register a serializer, or opt in to cloudpickle "
                "with @lm.step(pickle=True)"
            )
        serializer = found
    if serializer.dump_to is not None:
        return serializer.dump_to(value, store)
    assert serializer.dump is not None
    blob = store.put_bytes(serializer.dump(value))
    return ArtifactRef(serializer.name, blob.digest, blob.size, type(value).__name__)


def load_value(ref: ArtifactRef, store: Any) -> Any:
    serializer = _by_name(ref.serializer)
    if serializer.load_from is not None:
        return serializer.load_from(ref, store)
    assert serializer.load is not None
    return serializer.load(b"".join(store.iter_chunks(ref.digest)))
