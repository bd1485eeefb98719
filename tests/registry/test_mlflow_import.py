"""`import_mlflow`: MLflow model directories written by the real mlflow 3.17 become loopml packages.

The fixtures under tests/data/mlflow/ were saved by `mlflow.<flavor>.save_model` (see make_fixtures.py there);
expected.json holds each original model's predictions on 20 fixed rows. CI has no mlflow: the fixtures are
committed.
"""

from __future__ import annotations

import doctest
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.base import BaseEstimator

from loopml.errors import InvalidInput, PermissionDenied
from loopml.registry import load_model, mlflow_import
from loopml.registry.mlflow_import import import_mlflow
from loopml.registry.signature import ColumnSpec, OutputSpec

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "mlflow"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
ROWS = pd.DataFrame(EXPECTED["rows"])
# fixture -> (loopml flavor of the imported package, whether MLflow stored it with pickle)
CASES = {
    "sklearn_skops": ("sklearn", False),
    "sklearn_cloudpickle": ("sklearn", True),
    "xgboost_regressor": ("xgboost", False),
    "lightgbm_booster": ("lightgbm", False),
    "lightgbm_regressor": ("lightgbm", False),
    "lightgbm_regressor_cloudpickle": ("lightgbm", True),
}
FEATURES = ("temp", "atemp", "hum", "windspeed", "hr")


class Doubler(BaseEstimator):  # type: ignore[misc]
    """A user-defined estimator: not a type loopml trusts in a skops file."""

    def fit(self, _x: Any, _y: Any = None) -> Doubler:
        self.fitted_ = True
        return self

    def predict(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype="float64")[:, 0] * 2.0


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / "source" / name
    shutil.copytree(FIXTURES / name, target)
    return target


def _edit_mlmodel(directory: Path, change: Any) -> None:
    spec = yaml.safe_load((directory / "MLmodel").read_text())
    change(spec)
    (directory / "MLmodel").write_text(yaml.safe_dump(spec))


def test_fixtures_cover_every_case() -> None:
    assert sorted(EXPECTED["predictions"]) == sorted(CASES)
    assert EXPECTED["mlflow_version"].startswith("3.17")
    assert len(ROWS) == 20


@pytest.mark.parametrize("name", sorted(CASES))
def test_import_predicts_exactly_like_the_mlflow_model(name: str, tmp_path: Path) -> None:
    flavor, pickled = CASES[name]
    package = import_mlflow(FIXTURES / name, tmp_path / "package", trust_pickle=pickled)

    assert package.manifest.flavor == flavor
    assert not package.manifest.requires_pickle  # stored in loopml's safe format: loading needs no opt-in
    model = load_model(package.directory)
    np.testing.assert_allclose(model.predict(ROWS), EXPECTED["predictions"][name], rtol=1e-9, atol=0)
    np.testing.assert_allclose(
        model.predict(EXPECTED["rows"]), EXPECTED["predictions"][name], rtol=1e-9, atol=0
    )  # records too


@pytest.mark.parametrize("name", sorted(CASES))
def test_signature_and_input_example_are_carried_over(name: str, tmp_path: Path) -> None:
    package = import_mlflow(FIXTURES / name, tmp_path / "package", trust_pickle=True)

    signature = package.manifest.signature
    assert signature is not None
    assert signature.inputs == (
        ColumnSpec("temp", "float64"),
        ColumnSpec("atemp", "float64"),
        ColumnSpec("hum", "float64"),
        ColumnSpec("windspeed", "float64"),
        ColumnSpec("hr", "int64"),
    )
    assert signature.outputs == OutputSpec("float32" if name.startswith("xgboost") else "float64", (-1,))
    assert signature.params is None
    example = load_model(package.directory).input_example
    assert example == [
        {"temp": 0.24, "atemp": 0.2879, "hum": 0.81, "windspeed": 0.0, "hr": 0},
        {"temp": 0.22, "atemp": 0.2727, "hum": 0.8, "windspeed": 0.0, "hr": 1},
        {"temp": 0.22, "atemp": 0.2727, "hum": 0.8, "windspeed": 0.0, "hr": 2},
    ]


def test_signature_is_enforced_after_import(tmp_path: Path) -> None:
    model = load_model(import_mlflow(FIXTURES / "xgboost_regressor", tmp_path / "package").directory)

    with pytest.raises(InvalidInput, match="missing column 'hr'"):
        model.predict(ROWS.drop(columns="hr"))
    with pytest.raises(InvalidInput, match="'hr'"):
        model.predict(ROWS.assign(hr=ROWS["hr"] + 0.5))


def test_provenance_is_kept_in_the_package(tmp_path: Path) -> None:
    package = import_mlflow(FIXTURES / "lightgbm_booster", tmp_path / "package")

    assert (package.directory / "mlflow" / "MLmodel").read_bytes() == (
        FIXTURES / "lightgbm_booster" / "MLmodel"
    ).read_bytes()
    record = json.loads((package.directory / "mlflow" / "import.json").read_text())
    assert record["source"] == (FIXTURES / "lightgbm_booster").resolve().as_uri()
    assert record["mlflow_flavor"] == "lightgbm"
    assert record["mlflow_version"] == EXPECTED["mlflow_version"]
    assert record["model_file"] == "model.lgb"
    import hashlib

    assert (
        record["model_file_sha256"]
        == hashlib.sha256((FIXTURES / "lightgbm_booster" / "model.lgb").read_bytes()).hexdigest()
    )
    assert {"mlflow/MLmodel", "mlflow/import.json"} <= set(package.manifest.files)  # hashed like every file


@pytest.mark.parametrize("name", ["sklearn_cloudpickle", "lightgbm_regressor_cloudpickle"])
def test_pickled_models_need_trust_pickle(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPML_TRUST_PICKLE", raising=False)
    with pytest.raises(PermissionDenied, match=r"model\.pkl with pickle.*trust_pickle=True"):
        import_mlflow(FIXTURES / name, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()

    monkeypatch.setenv("LOOPML_TRUST_PICKLE", "1")
    assert import_mlflow(FIXTURES / name, tmp_path / "accepted").manifest.flavor in ("sklearn", "lightgbm")


def test_skops_types_listed_in_mlmodel_are_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow trusts the skops_trusted_types of the MLmodel; whoever wrote the file wrote that list too."""
    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    monkeypatch.delenv("LOOPML_TRUST_PICKLE", raising=False)
    source = _copy("sklearn_skops", tmp_path)
    pipeline = make_pipeline(StandardScaler(), Doubler()).fit(ROWS, None)
    sio.dump(pipeline, source / "model.skops")
    custom = f"{Doubler.__module__}.Doubler"
    _edit_mlmodel(source, lambda spec: spec["flavors"]["sklearn"].update(skops_trusted_types=[custom]))

    with pytest.raises(PermissionDenied, match=rf"types loopml does not trust \({custom};.*trust_pickle=True"):
        import_mlflow(source, tmp_path / "refused")

    package = import_mlflow(source, tmp_path / "accepted", trust_pickle=True)
    assert package.manifest.flavor == "pyfunc"  # not storable in loopml's skops flavor: kept as pickle
    assert package.manifest.requires_pickle
    with pytest.raises(PermissionDenied):
        load_model(package.directory)
    expected = pipeline.predict(ROWS[list(FEATURES)])
    np.testing.assert_array_equal(load_model(package.directory, trust_pickle=True).predict(ROWS), expected)


def test_sources_given_as_file_uri_or_mlmodel_path(tmp_path: Path) -> None:
    root = FIXTURES / "lightgbm_booster"
    by_uri = import_mlflow(root.resolve().as_uri(), tmp_path / "uri")
    by_file = import_mlflow(str(root / "MLmodel"), tmp_path / "file")
    assert by_uri.manifest.files["model.txt"] == by_file.manifest.files["model.txt"]


@pytest.mark.parametrize(
    "source",
    [
        "s3://bucket/models/m1",
        "http://example.com/model",
        "https://example.com/model",
        "models:/churn/1",
        "runs:/0a1b2c/model",
        "dbfs:/databricks/model",
    ],
)
def test_remote_sources_are_refused(source: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"does not fetch remote URLs; download it first.*mlflow artifacts download"):
        import_mlflow(source, tmp_path / "package")
    assert not (tmp_path / "package").exists()


def test_file_uri_with_a_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="must name a local path"):
        import_mlflow("file://fileserver/share/model", tmp_path / "package")


def test_missing_directory_or_mlmodel(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such directory"):
        import_mlflow(tmp_path / "nowhere", tmp_path / "package")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="not an MLflow model directory: it has no MLmodel file"):
        import_mlflow(tmp_path / "empty", tmp_path / "package")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flavors: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "expected a YAML mapping, got list"),
        ("mlflow_version: 3.17.2\n", "no 'flavors' section"),
        (b"\xff\xfe\x00".decode("latin-1"), "not valid YAML"),
    ],
)
def test_malformed_mlmodel(text: str, message: str, tmp_path: Path) -> None:
    source = _copy("sklearn_skops", tmp_path)
    (source / "MLmodel").write_text(text, encoding="latin-1")
    with pytest.raises(InvalidInput, match=message):
        import_mlflow(source, tmp_path / "package")


def test_unsupported_flavor_lists_found_and_supported(tmp_path: Path) -> None:
    source = tmp_path / "torch_model"
    source.mkdir()
    (source / "MLmodel").write_text(
        yaml.safe_dump(
            {
                "flavors": {
                    "python_function": {"loader_module": "mlflow.pytorch", "data": "data"},
                    "pytorch": {"model_data": "data", "pytorch_version": "2.5.0"},
                },
                "mlflow_version": "3.17.2",
            }
        )
    )
    with pytest.raises(
        InvalidInput,
        match=r"no supported flavor; found python_function, pytorch, loopml imports sklearn, xgboost, lightgbm",
    ):
        import_mlflow(source, tmp_path / "package")
    assert not (tmp_path / "package").exists()


def test_model_file_outside_the_directory_is_refused(tmp_path: Path) -> None:
    source = _copy("sklearn_cloudpickle", tmp_path)
    shutil.copy(source / "model.pkl", tmp_path / "outside.pkl")
    _edit_mlmodel(source, lambda spec: spec["flavors"]["sklearn"].update(pickled_model="../../outside.pkl"))
    with pytest.raises(InvalidInput, match="points outside the model directory"):
        import_mlflow(source, tmp_path / "package", trust_pickle=True)


def test_missing_model_file(tmp_path: Path) -> None:
    source = _copy("xgboost_regressor", tmp_path)
    (source / "model.ubj").unlink()
    with pytest.raises(InvalidInput, match=r"the model file 'model\.ubj' named by flavors\.xgboost\.data is missing"):
        import_mlflow(source, tmp_path / "package")


def test_unknown_xgboost_class_is_refused(tmp_path: Path) -> None:
    source = _copy("xgboost_regressor", tmp_path)
    _edit_mlmodel(source, lambda spec: spec["flavors"]["xgboost"].update(model_class="os.system"))
    with pytest.raises(InvalidInput, match=r"unsupported model_class 'os\.system'"):
        import_mlflow(source, tmp_path / "package")


def test_column_type_without_loopml_dtype_is_refused(tmp_path: Path) -> None:
    source = _copy("lightgbm_booster", tmp_path)
    inputs = json.dumps([{"type": "binary", "name": "blob", "required": True}])
    _edit_mlmodel(source, lambda spec: spec["signature"].update(inputs=inputs))
    with pytest.raises(InvalidInput, match="MLflow type 'binary' has no loopml column dtype"):
        import_mlflow(source, tmp_path / "package")


def test_optional_columns_become_nullable_and_params_carry_over(tmp_path: Path) -> None:
    source = _copy("lightgbm_booster", tmp_path)
    inputs = [{"type": "double", "name": n, "required": n != "hum"} for n in FEATURES[:4]]
    inputs.append({"type": "long", "name": "hr", "required": True})
    params = [{"name": "threshold", "type": "double", "default": 1, "shape": None}]

    def change(spec: dict[str, Any]) -> None:
        spec["signature"].update(inputs=json.dumps(inputs), params=json.dumps(params))

    _edit_mlmodel(source, change)
    signature = import_mlflow(source, tmp_path / "package").manifest.signature
    assert signature is not None
    assert [c.nullable for c in signature.inputs] == [False, False, True, False, False]
    assert signature.params is not None
    assert [(p.name, p.dtype, p.default) for p in signature.params] == [("threshold", "float64", 1.0)]


def test_tensor_signature_and_ndarray_example(tmp_path: Path) -> None:
    source = _copy("lightgbm_booster", tmp_path)
    inputs = json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 5]}}])

    def change(spec: dict[str, Any]) -> None:
        spec["signature"].update(inputs=inputs)
        spec["saved_input_example_info"] = {
            "artifact_path": "input_example.json",
            "type": "ndarray",
            "format": "tf-serving",
        }

    _edit_mlmodel(source, change)
    (source / "input_example.json").write_text(json.dumps({"inputs": ROWS.head(2).to_numpy().tolist()}))
    package = import_mlflow(source, tmp_path / "package")

    signature = package.manifest.signature
    assert signature is not None
    assert signature.column_names == ("0", "1", "2", "3", "4")
    model = load_model(package.directory)
    assert model.input_example == [{str(i): v for i, v in enumerate(row)} for row in ROWS.head(2).to_numpy().tolist()]
    got = model.predict(ROWS.to_numpy(dtype="float64"))
    np.testing.assert_allclose(got, EXPECTED["predictions"]["lightgbm_booster"], rtol=1e-9, atol=0)


def test_serving_example_is_used_when_input_example_is_absent(tmp_path: Path) -> None:
    source = _copy("sklearn_skops", tmp_path)
    (source / "input_example.json").unlink()
    package = import_mlflow(source, tmp_path / "package")
    example = load_model(package.directory).input_example
    assert example is not None
    assert example[0] == {"temp": 0.24, "atemp": 0.2879, "hum": 0.81, "windspeed": 0.0, "hr": 0}


def test_malformed_input_example_is_refused(tmp_path: Path) -> None:
    source = _copy("sklearn_skops", tmp_path)
    (source / "input_example.json").write_text('{"columns": ["temp"], "data": [[0.1, 0.2]]}')
    with pytest.raises(InvalidInput, match="split-orient example needs 'columns' and rows of that length"):
        import_mlflow(source, tmp_path / "package")


def test_destination_must_be_new_or_empty(tmp_path: Path) -> None:
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not an empty directory"):
        import_mlflow(FIXTURES / "lightgbm_booster", tmp_path / "package")
    assert (tmp_path / "package" / "keep.txt").read_text() == "mine"


def test_docstring_example_runs() -> None:
    assert doctest.testmod(mlflow_import).failed == 0
