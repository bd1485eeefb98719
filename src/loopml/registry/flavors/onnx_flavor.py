"""ONNX models (an `onnx.ModelProto` or a path to a .onnx file), run with onnxruntime on the CPU.

Inputs are fed by the graph's input names: a graph with one input gets the whole table as one tensor of that
input's type; a graph with one input per column gets each column as an (n, 1) tensor.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import InvalidInput
from loopml.registry.flavors import SavedFiles

if TYPE_CHECKING:
    from loopml.registry.manifest import Manifest

__all__ = ["OnnxFlavor", "OnnxPredictor"]

MODEL_FILE = "model.onnx"
_TENSOR_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


class OnnxFlavor:
    name = "onnx"
    loader = __name__
    requires_pickle = False

    def accepts(self, model: object) -> bool:
        if isinstance(model, str | os.PathLike):
            return str(model).endswith(".onnx")
        onnx = sys.modules.get("onnx")
        return onnx is not None and isinstance(model, onnx.ModelProto)

    def save(self, model: object, directory: Path) -> SavedFiles:
        source: Any = model
        data = Path(source).read_bytes() if isinstance(source, str | os.PathLike) else source.SerializeToString()
        (directory / MODEL_FILE).write_bytes(data)
        return SavedFiles((MODEL_FILE,))

    def load(self, directory: Path, manifest: Manifest) -> OnnxPredictor:
        import onnxruntime as ort

        session = ort.InferenceSession(str(directory / MODEL_FILE), providers=["CPUExecutionProvider"])
        names = None if manifest.signature is None else manifest.signature.column_names
        return OnnxPredictor(session, names)


class OnnxPredictor:
    def __init__(self, session: Any, columns: tuple[str, ...] | None) -> None:
        self._session = session
        inputs = session.get_inputs()
        unknown = [i.type for i in inputs if i.type not in _TENSOR_TYPES]
        if unknown:
            raise InvalidInput(f"onnx flavor: unsupported graph input type {unknown[0]}")
        self._inputs = [(i.name, _TENSOR_TYPES[i.type]) for i in inputs]
        self._columns = columns

    @property
    def native(self) -> Any:
        return self._session

    def predict(
        self,
        data: Any,
        params: Mapping[str, object] | None = None,  # noqa: ARG002 - the Predictor protocol; no params here
    ) -> np.ndarray[Any, Any]:
        if len(self._inputs) == 1:
            name, dtype = self._inputs[0]
            feed: dict[str, np.ndarray[Any, Any]] = {name: np.asarray(data, dtype=dtype)}
        else:
            feed = {name: self._column(data, name).astype(dtype).reshape(-1, 1) for name, dtype in self._inputs}
        result = np.asarray(self._session.run(None, feed)[0])
        return result.ravel() if result.ndim == 2 and result.shape[1] == 1 else result

    def _column(self, data: Any, name: str) -> np.ndarray[Any, Any]:
        if isinstance(data, np.ndarray):
            if self._columns is None or name not in self._columns:
                raise InvalidInput(f"onnx flavor: graph input {name!r} is not a column of the signature")
            return data[:, self._columns.index(name)]
        if name not in data.columns:
            raise InvalidInput(f"onnx flavor: the input has no column {name!r} for the graph input of that name")
        return np.asarray(data[name].to_numpy())
