"""The flavor conformance suite: every built-in flavor saves, verifies, loads and predicts the same.

Each case trains a tiny real model on a slice of Bike Sharing; the suite checks save -> load -> predict equal
to the original model, the inferred signature, and that any changed, added or removed file is refused.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.errors import ArtifactCorrupted
from loopml.registry import FLAVORS, load_model, save_model
from loopml.registry.manifest import MANIFEST_FILE

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"
FEATURES = [
    "season",
    "mnth",
    "hr",
    "holiday",
    "weekday",
    "workingday",
    "weathersit",
    "temp",
    "atemp",
    "hum",
    "windspeed",
]
INT_FEATURES = set(FEATURES[:7])


class MeanByHour:
    """A user model for the pyfunc flavor: the mean count per hour of the day."""

    def __init__(self, x: pd.DataFrame, y: pd.Series) -> None:
        self.table = {int(k): float(v) for k, v in y.groupby(x["hr"]).mean().items()}
        self.default = float(y.mean())

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return np.array([self.table.get(int(h), self.default) for h in x["hr"]]) + x["temp"].to_numpy()


def _hgb(x: pd.DataFrame, y: pd.Series) -> tuple[Any, Callable[[pd.DataFrame], Any]]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(max_iter=10, random_state=0).fit(x, y)
    return model, model.predict


def _pipeline(x: pd.DataFrame, y: pd.Series) -> tuple[Any, Callable[[pd.DataFrame], Any]]:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), Ridge()).fit(x, y)
    return model, model.predict


def _xgboost(x: pd.DataFrame, y: pd.Series) -> tuple[Any, Callable[[pd.DataFrame], Any]]:
    xgb = pytest.importorskip("xgboost")
    model = xgb.XGBRegressor(n_estimators=8, max_depth=3, n_jobs=1).fit(x, y)
    return model, model.predict


def _lightgbm(x: pd.DataFrame, y: pd.Series) -> tuple[Any, Callable[[pd.DataFrame], Any]]:
    lgb = pytest.importorskip("lightgbm")
    model = lgb.LGBMRegressor(n_estimators=8, num_leaves=7, verbose=-1, n_jobs=1).fit(x, y)
    return model, model.predict


def _onnx(x: pd.DataFrame, y: pd.Series) -> tuple[Any, Callable[[pd.DataFrame], Any]]:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(x.to_numpy(dtype=np.float32), y)
    proto = skl2onnx.to_onnx(model, x.to_numpy(dtype=np.float32)[:1], target_opset=17)
    return proto, lambda frame: model.predict(frame.to_numpy(dtype=np.float32))


def _pyfunc(x: pd.DataFrame, y: pd.Series) -> tuple[Any, Callable[[pd.DataFrame], Any]]:
    model = MeanByHour(x, y)
    return model, model.predict


# case -> (builder, expected flavor, tolerance)
CASES: dict[str, tuple[Callable[..., Any], str, float]] = {
    "sklearn-hgb": (_hgb, "sklearn", 1e-9),
    "sklearn-pipeline": (_pipeline, "sklearn", 1e-9),
    "xgboost": (_xgboost, "xgboost", 1e-6),
    "lightgbm": (_lightgbm, "lightgbm", 1e-9),
    "onnx": (_onnx, "onnx", 1e-4),
    "pyfunc": (_pyfunc, "pyfunc", 1e-9),
}


@pytest.fixture(scope="module")
def bike() -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(DATA, nrows=400)
    return frame[FEATURES], frame["cnt"].astype("float64")


@pytest.fixture(scope="module", params=sorted(CASES))
def saved(
    request: pytest.FixtureRequest, bike: tuple[pd.DataFrame, pd.Series], tmp_path_factory: pytest.TempPathFactory
):
    builder, flavor, tolerance = CASES[request.param]
    x, y = bike
    model, reference = builder(x, y)
    directory = tmp_path_factory.mktemp(request.param) / "package"
    package = save_model(model, directory, input_example=x.iloc[:5], metrics={"rmse": 1.0})
    return package, reference, flavor, tolerance


def _load(directory: Path, flavor: str) -> Any:
    return load_model(directory, trust_pickle=FLAVORS[flavor].requires_pickle)


def test_save_load_predict_equal(saved: Any, bike: tuple[pd.DataFrame, pd.Series]) -> None:
    package, reference, flavor, tolerance = saved
    x = bike[0].iloc[100:160]
    loaded = _load(package.directory, flavor)
    expected = np.asarray(reference(x))
    np.testing.assert_allclose(loaded.predict(x), expected, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(loaded.predict(x.to_dict(orient="records")), expected, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(loaded.predict(x.to_numpy()), expected, rtol=tolerance, atol=tolerance)
    one_row = x.iloc[[7]]
    np.testing.assert_allclose(loaded.predict(one_row.to_dict(orient="records")[0]), expected[[7]], rtol=tolerance)


def test_manifest_and_signature(saved: Any) -> None:
    package, _, flavor, _ = saved
    manifest = package.manifest
    assert manifest.flavor == flavor
    assert manifest.requires_pickle is FLAVORS[flavor].requires_pickle
    assert manifest.metrics == {"rmse": 1.0}
    assert set(manifest.files) >= {"input_example.json"}
    signature = manifest.signature
    assert signature is not None
    assert [c.name for c in signature.inputs] == FEATURES
    assert {c.name: c.dtype for c in signature.inputs} == {
        n: "int64" if n in INT_FEATURES else "float64" for n in FEATURES
    }
    assert not any(c.nullable for c in signature.inputs)
    assert signature.outputs is not None and signature.outputs.shape == (-1,)
    assert signature.outputs.dtype in {"float32", "float64"}
    loaded = _load(package.directory, flavor)
    assert loaded.signature == signature
    assert loaded.input_example is not None and len(loaded.input_example) == 5


def test_a_changed_byte_in_any_file_is_refused_naming_it(saved: Any, tmp_path: Path) -> None:
    package, _, flavor, _ = saved
    for name in package.manifest.files:
        copy = tmp_path / name.replace("/", "_")
        shutil.copytree(package.directory, copy)
        path = copy / name
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(ArtifactCorrupted, match=rf"^{name}: sha256 does not match"):
            _load(copy, flavor)


def test_an_unlisted_file_is_refused(saved: Any, tmp_path: Path) -> None:
    package, _, flavor, _ = saved
    copy = tmp_path / "package"
    shutil.copytree(package.directory, copy)
    (copy / "sub").mkdir()
    (copy / "sub" / "payload.py").write_text("print('hi')\n")
    with pytest.raises(ArtifactCorrupted, match=r"sub/payload.py: file is not listed"):
        _load(copy, flavor)


def test_a_deleted_file_is_refused(saved: Any, tmp_path: Path) -> None:
    package, _, flavor, _ = saved
    for name in package.manifest.files:
        copy = tmp_path / ("deleted-" + name.replace("/", "_"))
        shutil.copytree(package.directory, copy)
        (copy / name).unlink()
        with pytest.raises(ArtifactCorrupted, match=rf"^{name}: file listed in the manifest is missing"):
            _load(copy, flavor)


def test_the_manifest_digest_identifies_the_package(saved: Any) -> None:
    package, _, flavor, _ = saved
    assert (package.directory / MANIFEST_FILE).is_file()
    loaded = load_model(package.directory, trust_pickle=FLAVORS[flavor].requires_pickle, expected_digest=package.digest)
    assert loaded.manifest == package.manifest
    with pytest.raises(ArtifactCorrupted, match=MANIFEST_FILE):
        load_model(package.directory, trust_pickle=True, expected_digest="0" * 64)


def test_an_onnx_file_path_is_saved_as_is(bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path) -> None:
    proto, reference = _onnx(*bike)
    source = tmp_path / "linear.onnx"
    source.write_bytes(proto.SerializeToString())
    package = save_model(str(source), tmp_path / "package", input_example=bike[0].iloc[:3])
    assert package.manifest.flavor == "onnx"
    assert (tmp_path / "package" / "model.onnx").read_bytes() == source.read_bytes()
    x = bike[0].iloc[:20]
    np.testing.assert_allclose(load_model(tmp_path / "package").predict(x), reference(x), rtol=1e-4)


class BusyHours:
    """A user classifier for the pyfunc flavor, with `classes_` and `predict_proba` as scikit-learn has them."""

    classes_ = np.array(["busy", "quiet"])

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        busy = 1 / (1 + np.exp(-(x["hr"].to_numpy() - 12) / 3))
        return np.column_stack([busy, 1 - busy])

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


def _hgb_classifier(x: pd.DataFrame, y: pd.Series) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(x, y)  # predicts from compiled trees


def _logistic_pipeline(x: pd.DataFrame, y: pd.Series) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)


def _xgboost_classifier(x: pd.DataFrame, y: pd.Series) -> Any:
    xgb = pytest.importorskip("xgboost")
    codes = pd.Series(pd.Categorical(y).codes, index=y.index)  # XGBoost takes classes 0..k-1
    return xgb.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1).fit(x, codes)


def _lightgbm_classifier(x: pd.DataFrame, y: pd.Series) -> Any:
    lgb = pytest.importorskip("lightgbm")
    return lgb.LGBMClassifier(n_estimators=8, num_leaves=7, verbose=-1, n_jobs=1).fit(x, y)


CLASSIFIERS: dict[str, Callable[[pd.DataFrame, pd.Series], Any]] = {
    "sklearn-hgb": _hgb_classifier,
    "sklearn-pipeline": _logistic_pipeline,
    "xgboost": _xgboost_classifier,
    "lightgbm": _lightgbm_classifier,
    "pyfunc": lambda _x, _y: BusyHours(),
}


@pytest.mark.parametrize("case", sorted(CLASSIFIERS))
@pytest.mark.parametrize("classes", [2, 3])
def test_classifiers_load_with_their_classes_and_predict_proba(
    case: str, classes: int, bike: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    x, counts = bike
    if classes == 2:
        y = pd.Series(np.where(counts > 150, "busy", "quiet"), index=x.index)
    else:
        y = pd.Series(np.select([counts < 50, counts < 200], ["low", "mid"], "high"), index=x.index)
    model = CLASSIFIERS[case](x, y)
    save_model(model, tmp_path / "package", input_example=x.iloc[:5])
    loaded = load_model(tmp_path / "package", trust_pickle=True)
    assert loaded.classes == np.asarray(model.classes_).tolist()
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x), rtol=1e-6, atol=1e-9)


def test_models_without_probabilities_say_so(saved) -> None:  # type: ignore[no-untyped-def]
    from loopml.errors import InvalidInput

    package = saved[0]
    loaded = load_model(package.directory, trust_pickle=True)
    assert loaded.classes is None
    with pytest.raises(InvalidInput, match="no predict_proba"):
        loaded.predict_proba(loaded.input_example)
