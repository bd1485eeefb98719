"""Model flavors: one `Flavor` protocol, the built-in flavors, and the registry of flavors by name.

A flavor saves a model object into files of a package and loads them back as a `Predictor`. Each flavor imports
its library (xgboost, lightgbm, onnxruntime...) inside its methods only, so importing this package stays cheap.
`flavor_for(model)` picks a flavor by the model's type without importing any ML library: a model's library is
already imported when the model exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from loopml.registry.manifest import Manifest

__all__ = [
    "FALLBACK_FLAVOR",
    "FLAVORS",
    "Flavor",
    "Predictor",
    "SavedFiles",
    "as_frame",
    "flavor_for",
    "get_flavor",
    "register_flavor",
]

FALLBACK_FLAVOR = "pyfunc"


@dataclass(frozen=True)
class SavedFiles:
    """What `Flavor.save` wrote: relative file names, and flavor data for the manifest."""

    files: tuple[str, ...]
    trusted_types: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Predictor(Protocol):
    """A loaded model: `native` is the library's own object, `predict` returns a numpy array.

    A classifier's predictor also has `classes()` (the class labels, in the order of the probability columns)
    and `predict_proba(data)` (an (n, classes) array); `LoadedModel.predict_proba` looks for them, so they are
    optional and a flavor whose model cannot answer probabilities leaves them out (or returns None classes).
    """

    @property
    def native(self) -> Any: ...

    def predict(self, data: Any, params: Mapping[str, object] | None = None) -> np.ndarray[Any, Any]: ...


class Flavor(Protocol):
    """How one kind of model is saved into a package directory and loaded back.

    `data` given to `Predictor.predict` is what `Signature.enforce` returns: a DataFrame, or a 2-D numpy array
    in signature column order.
    """

    name: str
    loader: str  # the module that implements it, recorded in the manifest
    requires_pickle: bool

    def accepts(self, model: object) -> bool: ...

    def save(self, model: object, directory: Path) -> SavedFiles: ...

    def load(self, directory: Path, manifest: Manifest) -> Predictor: ...


FLAVORS: dict[str, Flavor] = {}


def register_flavor(flavor: Flavor, *, replace: bool = False) -> None:
    """Add a flavor; `flavor_for` tries flavors in registration order, the pyfunc fallback last."""
    if flavor.name in FLAVORS and not replace:
        raise InvalidInput(f"a flavor named {flavor.name!r} is already registered (pass replace=True)")
    FLAVORS[flavor.name] = flavor
    fallback = FLAVORS.pop(FALLBACK_FLAVOR, None)
    if fallback is not None:
        FLAVORS[FALLBACK_FLAVOR] = fallback


def get_flavor(name: str) -> Flavor:
    """The flavor registered under `name`; `InvalidInput` when none is."""
    flavor = FLAVORS.get(name)
    if flavor is None:
        raise InvalidInput(f"unknown model flavor {name!r}; known flavors: {', '.join(sorted(FLAVORS))}")
    return flavor


def flavor_for(model: object) -> Flavor:
    """The flavor that saves `model`, chosen by its type."""
    for flavor in FLAVORS.values():
        if flavor.accepts(model):
            return flavor
    raise InvalidInput(
        f"no model flavor saves a {type(model).__module__}.{type(model).__qualname__}: "
        "give the object a predict method (the pyfunc flavor) or register a flavor for it"
    )


def as_frame(data: Any, columns: Sequence[str]) -> pd.DataFrame:
    """`data` as a DataFrame: a 2-D array gets the given column names (models fitted on DataFrames want them)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    return pd.DataFrame(data, columns=list(columns))


def _register_builtins() -> None:
    from loopml.registry.flavors.lightgbm_flavor import LightGBMFlavor
    from loopml.registry.flavors.onnx_flavor import OnnxFlavor
    from loopml.registry.flavors.pyfunc_flavor import PyfuncFlavor
    from loopml.registry.flavors.sklearn_flavor import SklearnFlavor
    from loopml.registry.flavors.xgboost_flavor import XGBoostFlavor

    # xgboost and lightgbm models are scikit-learn estimators too: they come first.
    for flavor in (XGBoostFlavor(), LightGBMFlavor(), OnnxFlavor(), SklearnFlavor(), PyfuncFlavor()):
        register_flavor(flavor)


_register_builtins()
