"""XGBoost models in XGBoost's own UBJSON format (no pickle), loaded back into the same class.

The class is recorded in the manifest's `flavor_options.model_class` and looked up in a fixed list of
XGBoost classes, never imported by a name the package gives.
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

__all__ = ["MODEL_CLASSES", "XGBoostFlavor", "XGBoostPredictor"]

MODEL_FILE = "model.ubj"
MODEL_CLASSES = ("Booster", "XGBRegressor", "XGBClassifier", "XGBRanker", "XGBRFRegressor", "XGBRFClassifier")


class XGBoostFlavor:
    name = "xgboost"
    loader = __name__
    requires_pickle = False

    def accepts(self, model: object) -> bool:
        xgb = sys.modules.get("xgboost")
        return xgb is not None and isinstance(model, xgb.Booster | xgb.XGBModel)

    def save(self, model: object, directory: Path) -> SavedFiles:
        model_class = next(
            (
                c.__name__
                for c in type(model).__mro__
                if c.__module__.startswith("xgboost") and c.__name__ in MODEL_CLASSES
            ),
            None,
        )
        if model_class is None:
            raise InvalidInput(f"cannot save a {type(model).__qualname__} with the xgboost flavor; use flavor='pyfunc'")
        model.save_model(str(directory / MODEL_FILE))  # type: ignore[attr-defined]
        return SavedFiles((MODEL_FILE,), options={"model_class": model_class})

    def load(self, directory: Path, manifest: Manifest) -> XGBoostPredictor:
        model_class = manifest.flavor_options.get("model_class")
        if model_class not in MODEL_CLASSES:
            raise InvalidInput(f"xgboost flavor: unknown model_class {model_class!r}; expected one of {MODEL_CLASSES}")
        import xgboost as xgb

        model = getattr(xgb, model_class)()
        model.load_model(str(directory / MODEL_FILE))
        return XGBoostPredictor(model)


class XGBoostPredictor:
    def __init__(self, model: Any) -> None:
        self._model = model
        self._is_booster = type(model).__name__ == "Booster"

    @property
    def native(self) -> Any:
        return self._model

    def predict(
        self,
        data: Any,
        params: Mapping[str, object] | None = None,  # noqa: ARG002 - the Predictor protocol; no params here
    ) -> np.ndarray[Any, Any]:
        if self._is_booster:
            return np.asarray(self._model.inplace_predict(data))
        return np.asarray(self._model.predict(data))

    def classes(self) -> list[Any] | None:
        if self._is_booster or not callable(getattr(self._model, "predict_proba", None)):
            return None
        classes = getattr(self._model, "classes_", None)
        return None if classes is None else np.asarray(classes).tolist()

    def predict_proba(self, data: Any) -> np.ndarray[Any, Any]:
        return np.asarray(self._model.predict_proba(data))
