"""The package as a whole: strict manifests, the pickle opt-in, saving rules, and a cheap `import loopml.registry`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.linear_model import LinearRegression

from loopml.errors import ArtifactCorrupted, InvalidInput, PermissionDenied, UserCodeError
from loopml.registry import load_model, save_model
from loopml.registry.manifest import MANIFEST_FILE, Manifest
from loopml.registry.package import verify_package
from loopml.registry.pickle_guard import TRUST_PICKLE_ENV

X = pd.DataFrame({"hr": [0, 1, 2, 3, 4, 5], "temp": [0.2, 0.3, 0.25, 0.4, 0.5, 0.45]})
Y = np.array([10.0, 12.0, 11.0, 15.0, 18.0, 17.0])


class Doubler:
    """A pyfunc model that takes params."""

    def predict(self, x: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        factor = 2 if params is None else params["factor"]
        return x["temp"].to_numpy() * factor


class Broken:
    def predict(self, _x: pd.DataFrame) -> np.ndarray:
        raise ZeroDivisionError("oops")


class HandMade(BaseEstimator):
    """A scikit-learn estimator from user code: skops does not trust its type."""

    def fit(self, _x: pd.DataFrame, y: np.ndarray) -> HandMade:
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return np.full(len(x), self.mean_)


@pytest.fixture(autouse=True)
def _no_pickle_opt_in_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRUST_PICKLE_ENV, raising=False)


@pytest.fixture
def package_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    save_model(LinearRegression().fit(X, Y), directory, input_example=X.iloc[:2])
    return directory


def _edit_manifest(directory: Path, change: Any) -> None:
    raw = json.loads((directory / MANIFEST_FILE).read_text())
    change(raw)
    (directory / MANIFEST_FILE).write_text(json.dumps(raw))


# --- malformed manifests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: raw.pop("loader"), "missing field 'loader'"),
        (lambda raw: raw.update(created_at="yesterday"), "created_at must be an integer, got str"),
        (lambda raw: raw.update(requires_pickle="no"), "requires_pickle must be true or false"),
        (lambda raw: raw.update(flavor="tensorflow"), "unknown model flavor 'tensorflow'; known flavors: "),
        (lambda raw: raw.update(format_version=2), "unknown format_version 2"),
        (lambda raw: raw.update(format_version="1"), "format_version must be an integer"),
        (lambda raw: raw.update(surprise=1), "unknown field 'surprise'"),
        (lambda raw: raw["files"].update({"../escape": {"sha256": "0" * 64, "size": 1}}), "not a plain relative path"),
        (lambda raw: raw["files"]["model.skops"].update(sha256="abc"), "sha256 must be 64 lowercase hex"),
        (lambda raw: raw["signature"]["inputs"][0].update(dtype="tensor"), "invalid signature: .*unknown dtype"),
        (lambda raw: raw.update(loader="os"), "loader 'os' does not match flavor 'sklearn'"),
        (lambda raw: raw.update(metrics={"rmse": "low"}), "metrics must be an object of finite numbers"),
        (lambda raw: raw.update(trusted_types=["os.system"]), "never trusts"),
    ],
)
def test_malformed_manifests_are_clear_errors(package_dir: Path, change: Any, message: str) -> None:
    _edit_manifest(package_dir, change)
    with pytest.raises(InvalidInput, match=message):
        load_model(package_dir)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not valid JSON"),
        (b"[1, 2]", "must hold a JSON object"),
        (b'{"format_version": 1, "format_version": 1}', "key 'format_version' appears twice"),
        (b'{"format_version": NaN}', "NaN is not valid JSON"),
    ],
)
def test_manifests_that_are_not_json_objects(package_dir: Path, content: bytes, message: str) -> None:
    (package_dir / MANIFEST_FILE).write_bytes(content)
    with pytest.raises(InvalidInput, match=message):
        load_model(package_dir)


def test_a_directory_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=f"is not a loopml model package: {MANIFEST_FILE} is missing"):
        load_model(tmp_path)


def test_manifest_round_trip(package_dir: Path) -> None:
    manifest = Manifest.read(package_dir)
    assert Manifest.parse(manifest.to_json()) == manifest
    assert verify_package(package_dir) == manifest
    assert manifest.python_version == f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    assert {"numpy", "scikit-learn", "skops", "loopml"} <= set(manifest.packages)


# --- pickle ----------------------------------------------------------------------------------------------------


def test_pickle_needs_the_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "pyfunc"
    package = save_model(Doubler(), directory, input_example=X.iloc[:2])
    assert package.manifest.requires_pickle
    with pytest.raises(PermissionDenied, match=r"stored with pickle, which can run arbitrary code.*trust_pickle=True"):
        load_model(directory)
    np.testing.assert_allclose(load_model(directory, trust_pickle=True).predict(X), X["temp"] * 2)
    monkeypatch.setenv(TRUST_PICKLE_ENV, "1")
    np.testing.assert_allclose(load_model(directory).predict(X.iloc[:1]), [0.4])


def test_a_pickle_package_cannot_claim_to_be_pickle_free(tmp_path: Path) -> None:
    directory = tmp_path / "pyfunc"
    save_model(Doubler(), directory)
    _edit_manifest(directory, lambda raw: raw.update(requires_pickle=False))
    with pytest.raises(InvalidInput, match="needs pickle but requires_pickle is false"):
        load_model(directory)


def test_pickle_is_refused_in_a_process_that_forbade_it(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import numpy as np
        from loopml.errors import PermissionDenied
        from loopml.registry import load_model, save_model
        from loopml.registry.pickle_guard import forbid_pickle_in_this_process

        class Model:
            def predict(self, X):
                return np.zeros(len(X))

        save_model(Model(), {str(tmp_path / "pyfunc")!r})
        load_model({str(tmp_path / "pyfunc")!r}, trust_pickle=True)
        forbid_pickle_in_this_process("the loopml API server never loads pickled models")
        try:
            load_model({str(tmp_path / "pyfunc")!r}, trust_pickle=True)
        except PermissionDenied as exc:
            print(exc)
        """
    )
    env = {**os.environ, TRUST_PICKLE_ENV: "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    expected = "pickle loading is disabled in this process (the loopml API server never loads pickled models)"
    assert done.stdout.strip() == expected


def test_params_reach_a_pyfunc_model(tmp_path: Path) -> None:
    directory = tmp_path / "pyfunc"
    from loopml.registry.signature import ParamSpec, Signature, infer_signature

    inferred = infer_signature(X)
    signature = Signature(inferred.inputs, None, (ParamSpec("factor", "int64", 2),))
    save_model(Doubler(), directory, signature=signature)
    model = load_model(directory, trust_pickle=True)
    np.testing.assert_allclose(model.predict(X.iloc[:1], params={"factor": 10}), [2.0])
    np.testing.assert_allclose(model.predict(X.iloc[:1]), [0.4])
    with pytest.raises(InvalidInput, match="unknown param 'scale'"):
        model.predict(X.iloc[:1], params={"scale": 1})


def test_errors_of_user_code_are_wrapped(tmp_path: Path) -> None:
    directory = tmp_path / "broken"
    save_model(Broken(), directory)
    with pytest.raises(UserCodeError, match="the model's predict raised ZeroDivisionError: oops"):
        load_model(directory, trust_pickle=True).predict(X)


# --- saving --------------------------------------------------------------------------------------------------


def test_untrusted_sklearn_types_are_refused_and_pyfunc_suggested(tmp_path: Path) -> None:
    model = HandMade().fit(X, Y)
    with pytest.raises(InvalidInput, match=r"holds the type '.*HandMade'.*flavor='pyfunc'"):
        save_model(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    package = save_model(model, tmp_path / "m", flavor="pyfunc")
    assert package.manifest.flavor == "pyfunc"


def test_save_refuses_a_non_empty_directory_and_unknown_flavors(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("x")
    with pytest.raises(InvalidInput, match="not an empty directory"):
        save_model(LinearRegression().fit(X, Y), tmp_path / "taken")
    with pytest.raises(InvalidInput, match="unknown model flavor 'keras'"):
        save_model(LinearRegression().fit(X, Y), tmp_path / "m", flavor="keras")
    with pytest.raises(InvalidInput, match="the xgboost flavor cannot save a LinearRegression"):
        save_model(LinearRegression().fit(X, Y), tmp_path / "m", flavor="xgboost")
    with pytest.raises(InvalidInput, match=r"no model flavor saves a builtins.object"):
        save_model(object(), tmp_path / "m")


def test_extra_files_are_listed_and_verified(tmp_path: Path) -> None:
    source = tmp_path / "notes.md"
    source.write_text("trained on 2011\n")
    directory = tmp_path / "m"
    package = save_model(
        LinearRegression().fit(X, Y), directory, extra_files={"docs/notes.md": source, "labels.json": b"[]"}
    )
    assert {"docs/notes.md", "labels.json", "model.skops"} <= set(package.manifest.files)
    (directory / "docs" / "notes.md").write_text("trained on 2012\n")
    with pytest.raises(ArtifactCorrupted, match=r"^docs/notes.md: sha256 does not match"):
        load_model(directory)


def test_wrong_column_types_at_predict(package_dir: Path) -> None:
    model = load_model(package_dir)
    with pytest.raises(InvalidInput, match=r"column 'temp': expected float64, got \w+ \(strings such as 'warm'\)"):
        model.predict(pd.DataFrame({"hr": [1], "temp": ["warm"]}))
    with pytest.raises(InvalidInput, match=r"^missing column 'temp'$"):
        model.predict({"hr": 1})
    np.testing.assert_allclose(model.predict_raw(X), model.predict(X))


def test_extra_columns_policy_is_chosen_at_load(package_dir: Path) -> None:
    row = {"hr": 1, "temp": 0.3, "foo": 1}
    assert load_model(package_dir).predict(row).shape == (1,)
    with pytest.raises(InvalidInput, match="unexpected column 'foo'"):
        load_model(package_dir, extra_columns="error").predict(row)


def test_a_package_can_move(package_dir: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(package_dir, moved)
    assert load_model(moved).predict({"hr": 2, "temp": 0.25}).shape == (1,)


# --- import cost -----------------------------------------------------------------------------------------------


def test_import_loopml_registry_stays_free_of_ml_libraries() -> None:
    heavy = ("sklearn", "xgboost", "lightgbm", "onnxruntime", "onnx", "pandas", "skops", "cloudpickle")
    code = f"import sys, loopml.registry; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == ""
