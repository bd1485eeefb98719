"""A loaded model version ready to serve: its signature converter and the cheapest correct predict call.

Tree ensembles saved with compiled trees (see `loopml.registry.flavors.compiled_trees`) predict from the float
matrix directly. Otherwise: `LoadedModel.predict` re-checks the signature and, for a scikit-learn model fitted
on a DataFrame, builds a
DataFrame per call (about 1 ms against 0.15-0.4 ms for the tree walk of a 1-row HistGradientBoosting
predict). The serving path has already checked every value, so it calls the estimator on the numpy matrix
directly, through a shallow copy of the estimator without `feature_names_in_` (so scikit-learn neither
warns nor wants a DataFrame). That shortcut is taken only when the estimator's feature names are exactly the
signature's columns in order, and only after it gave the same predictions as the checked path on the
package's input example with no warning; otherwise predict goes through `LoadedModel.predict_raw`.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from loopml.data import Contract, RowValidator, Violation, compile_row_validator
from loopml.errors import InvalidInput
from loopml.registry import LoadedModel, load_model
from loopml.serving.inputs import InputConverter, ModelInput, from_records
from loopml.serving.specs import ServingVersion

__all__ = ["CONTRACT_FILE", "ServingModel", "load_serving_model"]

CONTRACT_FILE = "contract.yaml"  # a data contract in the package: checked on every request (docs/serving.md)


class ServingModel:
    """One model version in a replica: `converter` checks inputs, `predict` runs the model on a checked batch."""

    def __init__(self, version: ServingVersion, loaded: LoadedModel) -> None:
        signature = loaded.signature
        if signature is None:
            raise InvalidInput(
                f"{version.label}: the package at {version.package_dir} has no signature; serving checks every "
                "request against it (save the model with input_example= or signature=)"
            )
        self.model = version.model
        self.version = version.version
        self.label = version.label
        self.loaded = loaded
        self.flavor = loaded.manifest.flavor
        self.converter = InputConverter(signature)
        self.contract: Contract | None = None
        self._validate: RowValidator | None = None
        if CONTRACT_FILE in loaded.manifest.files:  # hashed and verified by load_model like every package file
            text = (loaded.directory / CONTRACT_FILE).read_text(encoding="utf-8")
            self.contract = Contract.from_yaml(text, source=f"{version.label}: {CONTRACT_FILE}")
            self._validate = compile_row_validator(self.contract)
        self._predict: Callable[[Any], Any] = loaded.predict_raw
        self.classes: list[Any] | None = loaded.classes
        """A classifier's class labels (the order of `predict_proba`'s columns); None: no probabilities."""
        self._predict_proba: Callable[[Any], Any] = loaded.predict_proba_raw
        self.fast_path = False
        fast = self._fast_predict()
        if fast is not None:
            self._predict, self.fast_path = fast, True
            bare = getattr(fast, "__self__", None)  # the estimator without feature names, when that is the path
            if (
                self.classes is not None
                and bare is not None
                and bare is not loaded
                and callable(getattr(bare, "predict_proba", None))
            ):
                self._predict_proba = bare.predict_proba

    @property
    def key(self) -> tuple[str, int]:
        return (self.model, self.version)

    def violations(self, data: ModelInput) -> list[tuple[int, Violation]]:
        """The contract's violations in each row of `data`, as (row index, violation); none without a contract."""
        validate = self._validate
        if validate is None:
            return []
        names = tuple(data.columns)
        found: list[tuple[int, Violation]] = []
        for i, values in enumerate(zip(*data.columns.values(), strict=True)):
            for violation in validate(dict(zip(names, values, strict=True))):
                found.append((i, violation))
        return found

    def predict(self, matrix: Any) -> np.ndarray[Any, Any]:
        """Predict on a matrix built by `converter.to_matrix` (or several of them concatenated)."""
        return np.asarray(self._predict(matrix))

    def predict_proba(self, matrix: Any) -> np.ndarray[Any, Any]:
        """Class probabilities on a checked matrix, columns in the order of `classes`; `InvalidInput` for a
        model without them."""
        self.check_probabilities()
        return np.asarray(self._predict_proba(matrix), dtype=np.float64)

    def check_probabilities(self) -> None:
        """`InvalidInput` (a 400) unless the model answers class probabilities."""
        if self.classes is None:
            raise InvalidInput(
                f"{self.label} ({self.flavor} flavor) has no predict_proba: it is not a classifier that gives "
                "probabilities; ask for predictions instead"
            )

    def _fast_predict(self) -> Callable[[Any], Any] | None:
        if self.converter.numeric and self.loaded.manifest.flavor_options.get("compiled_trees"):
            return self.loaded.predict_raw  # walks the compiled trees with numpy: no sklearn on the hot path
        native = self.loaded.native
        names = getattr(native, "feature_names_in_", None)
        if (
            self.flavor != "sklearn"
            or not self.converter.numeric
            or names is None
            or "feature_names_in_" not in vars(native)
            or [str(n) for n in names] != list(self.converter.names)
        ):
            return None
        bare = copy.copy(native)  # shares the fitted trees/coefficients; only the attribute dict is new
        del bare.feature_names_in_
        example = self.loaded.input_example or [dict.fromkeys(self.converter.names, 0)]
        try:
            matrix = self.converter.to_matrix(from_records(example, self.converter.names, where="input_example"))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                expected = np.asarray(self.loaded.predict(example))
                got = np.asarray(bare.predict(matrix))
        except Exception:  # any failure means "no shortcut", never a failed load
            return None
        if caught or got.shape != expected.shape or not np.array_equal(got, expected):
            return None
        predict: Callable[[Any], Any] = bare.predict
        return predict


def load_serving_model(version: ServingVersion, *, trust_pickle: bool = False) -> ServingModel:
    """Verify and load the package of `version` (blocking: call it from a worker thread)."""
    loaded = load_model(Path(version.package_dir), trust_pickle=trust_pickle)
    return ServingModel(version, loaded)
