"""Any object with a `predict` method, stored with cloudpickle: loading it can run arbitrary code.

The package marks itself `requires_pickle`, so `load_model` asks for the explicit opt-in first. This module
checks the process-wide ban again right before unpickling, and unpickles the very bytes whose sha256 it has
just checked against the manifest (no window between the check and the load).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import ArtifactCorrupted, PermissionDenied, UserCodeError
from loopml.registry.flavors import SavedFiles, as_frame
from loopml.registry.pickle_guard import pickle_forbidden_reason

if TYPE_CHECKING:
    from loopml.registry.manifest import Manifest

__all__ = ["PyfuncFlavor", "PyfuncPredictor"]

MODEL_FILE = "model.pkl"


class PyfuncFlavor:
    name = "pyfunc"
    loader = __name__
    requires_pickle = True

    def accepts(self, model: object) -> bool:
        return callable(getattr(model, "predict", None))

    def save(self, model: object, directory: Path) -> SavedFiles:
        import cloudpickle

        (directory / MODEL_FILE).write_bytes(cloudpickle.dumps(model))
        return SavedFiles((MODEL_FILE,))

    def load(self, directory: Path, manifest: Manifest) -> PyfuncPredictor:
        reason = pickle_forbidden_reason()
        if reason is not None:
            raise PermissionDenied(f"pickle loading is disabled in this process ({reason})")
        entry = manifest.files.get(MODEL_FILE)
        data = (directory / MODEL_FILE).read_bytes()
        if entry is None or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise ArtifactCorrupted(f"{MODEL_FILE}: content does not match the sha256 in the manifest; not loaded")
        import pickle

        try:
            model = pickle.loads(data)  # noqa: S301 - opt-in checked, bytes verified against the manifest
        except Exception as exc:
            raise UserCodeError(f"unpickling the model failed: {type(exc).__name__}: {exc}") from exc
        columns = None if manifest.signature is None else manifest.signature.column_names
        return PyfuncPredictor(model, columns)


class PyfuncPredictor:
    def __init__(self, model: Any, columns: tuple[str, ...] | None) -> None:
        self._model = model
        self._columns = columns

    @property
    def native(self) -> Any:
        return self._model

    def predict(self, data: Any, params: Mapping[str, object] | None = None) -> np.ndarray[Any, Any]:
        if self._columns is not None:
            data = as_frame(data, self._columns)
        try:
            result = self._model.predict(data) if params is None else self._model.predict(data, params=dict(params))
        except Exception as exc:
            raise UserCodeError(f"the model's predict raised {type(exc).__name__}: {exc}") from exc
        return np.asarray(result)

    def classes(self) -> list[Any] | None:
        classes = getattr(self._model, "classes_", None)
        if classes is None or not callable(getattr(self._model, "predict_proba", None)):
            return None
        labels: list[Any] = np.asarray(classes).tolist()
        return labels

    def predict_proba(self, data: Any) -> np.ndarray[Any, Any]:
        if self._columns is not None:
            data = as_frame(data, self._columns)
        try:
            result = self._model.predict_proba(data)
        except Exception as exc:
            raise UserCodeError(f"the model's predict_proba raised {type(exc).__name__}: {exc}") from exc
        return np.asarray(result)
