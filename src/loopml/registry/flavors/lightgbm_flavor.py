"""LightGBM models in LightGBM's own text format (no pickle), loaded as a `lightgbm.Booster`.

For an `LGBMClassifier` the class labels are recorded in `flavor_options.classes`, so predict returns labels
as the classifier does, not the booster's probabilities.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import InvalidInput
from loopml.registry.flavors import SavedFiles

if TYPE_CHECKING:
    from loopml.registry.manifest import Manifest

__all__ = ["LightGBMFlavor", "LightGBMPredictor"]

MODEL_FILE = "model.txt"


class LightGBMFlavor:
    name = "lightgbm"
    loader = __name__
    requires_pickle = False

    def accepts(self, model: object) -> bool:
        lgb = sys.modules.get("lightgbm")
        return lgb is not None and isinstance(model, lgb.Booster | lgb.LGBMModel)

    def save(self, model: object, directory: Path) -> SavedFiles:
        booster: Any = getattr(model, "booster_", model)
        booster.save_model(str(directory / MODEL_FILE))
        options: dict[str, Any] = {"model_class": type(model).__name__}
        classes = getattr(model, "classes_", None)
        if classes is not None:
            options["classes"] = np.asarray(classes).tolist()
        return SavedFiles((MODEL_FILE,), options=options)

    def load(self, directory: Path, manifest: Manifest) -> LightGBMPredictor:
        classes = manifest.flavor_options.get("classes")
        if classes is not None and not isinstance(classes, list):
            raise InvalidInput("lightgbm flavor: flavor_options.classes must be a list")
        import lightgbm as lgb

        return LightGBMPredictor(lgb.Booster(model_file=str(directory / MODEL_FILE)), classes)


class LightGBMPredictor:
    def __init__(self, booster: Any, classes: list[Any] | None) -> None:
        self._booster = booster
        self._classes = None if classes is None else np.asarray(classes)

    @property
    def native(self) -> Any:
        return self._booster

    def predict(
        self,
        data: Any,
        params: Mapping[str, object] | None = None,  # noqa: ARG002 - the Predictor protocol; no params here
    ) -> np.ndarray[Any, Any]:
        raw = np.asarray(self._booster.predict(data))
        if self._classes is None:
            return raw
        index = (raw > 0.5).astype(int) if raw.ndim == 1 else raw.argmax(axis=1)
        return np.asarray(self._classes[index])

    def classes(self) -> list[Any] | None:
        return None if self._classes is None else self._classes.tolist()

    def predict_proba(self, data: Any) -> np.ndarray[Any, Any]:
        """The booster's probabilities, one column per class (a binary booster gives the second class's)."""
        raw = np.asarray(self._booster.predict(data), dtype=np.float64)
        return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw
