"""Signatures: inference from examples, the JSON round trip, and enforcement with errors that name the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.errors import InvalidInput
from loopml.registry import Signature, infer_signature
from loopml.registry.signature import ColumnSpec, OutputSpec, ParamSpec


@pytest.fixture
def signature() -> Signature:
    return Signature(
        (ColumnSpec("hr", "int64"), ColumnSpec("temp", "float64"), ColumnSpec("hum", "float64", nullable=True)),
        OutputSpec("float64", (-1,)),
    )


def _frame(**columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame(columns)


# --- inference ---------------------------------------------------------------------------------------------


def test_infer_from_a_dataframe() -> None:
    frame = pd.DataFrame(
        {
            "hr": np.array([1, 2], dtype="int32"),
            "temp": [0.2, np.nan],
            "season": ["winter", "spring"],
            "holiday": [True, False],
            "at": pd.to_datetime(["2011-01-01", "2011-01-02"]),
        }
    )
    sig = infer_signature(frame, np.array([1.5, 2.5]))
    assert sig.inputs == (
        ColumnSpec("hr", "int32"),
        ColumnSpec("temp", "float64", nullable=True),
        ColumnSpec("season", "string"),
        ColumnSpec("holiday", "bool"),
        ColumnSpec("at", "datetime"),
    )
    assert sig.outputs == OutputSpec("float64", (-1,))


def test_infer_from_an_array_and_a_2d_prediction() -> None:
    sig = infer_signature(np.array([[1.0, np.nan], [2.0, 3.0]]), np.zeros((2, 3), dtype=np.float32))
    assert sig.inputs == (ColumnSpec("0", "float64"), ColumnSpec("1", "float64", nullable=True))
    assert sig.outputs == OutputSpec("float32", (-1, 3))


def test_infer_from_records() -> None:
    sig = infer_signature([{"hr": 1, "temp": 1, "name": "a"}, {"hr": 2, "temp": 0.5, "name": None}], ["x", "y"])
    assert sig.inputs == (
        ColumnSpec("hr", "int64"),
        ColumnSpec("temp", "float64"),
        ColumnSpec("name", "string", nullable=True),
    )
    assert sig.outputs == OutputSpec("string", (-1,))


def test_infer_refuses_what_it_cannot_type() -> None:
    with pytest.raises(InvalidInput, match="column 'x': every value in the example is null"):
        infer_signature([{"x": None}])
    with pytest.raises(InvalidInput, match="column 'x' holds values of mixed"):
        infer_signature(pd.DataFrame({"x": pd.Series([1, "a"], dtype=object)}))
    with pytest.raises(InvalidInput, match="input_example must be"):
        infer_signature("hello")


def test_json_round_trip(signature: Signature) -> None:
    with_params = Signature(signature.inputs, signature.outputs, (ParamSpec("k", "int64", 3),))
    for sig in (signature, with_params, Signature(signature.inputs)):
        assert Signature.from_dict(sig.to_dict()) == sig
    with pytest.raises(InvalidInput, match="unknown dtype 'complex'"):
        Signature.from_dict(
            {"inputs": [{"name": "a", "dtype": "complex", "nullable": False}], "outputs": None, "params": None}
        )
    with pytest.raises(InvalidInput, match="missing field 'params'"):
        Signature.from_dict({"inputs": [], "outputs": None})


# --- enforcement ---------------------------------------------------------------------------------------------


def test_missing_column(signature: Signature) -> None:
    with pytest.raises(InvalidInput, match=r"^missing column 'hum'$"):
        signature.enforce(_frame(hr=[1], temp=[0.5]))
    with pytest.raises(InvalidInput, match=r"^missing column 'hum'$"):
        signature.enforce([{"hr": 1, "temp": 0.5}])


def test_strings_in_a_float_column(signature: Signature) -> None:
    with pytest.raises(InvalidInput, match=r"^column 'temp': expected float64, got \w+ \(strings such as 'warm'\)"):
        signature.enforce(_frame(hr=[1], temp=["warm"], hum=[0.5]))
    with pytest.raises(InvalidInput, match=r"^column 'temp': expected float64, got object \(strings such as 'warm'\)"):
        signature.enforce(pd.DataFrame({"hr": [1], "temp": pd.Series(["warm"], dtype=object), "hum": [0.5]}))
    with pytest.raises(InvalidInput, match=r"^column 'temp': expected float64, got str 'warm'"):
        signature.enforce({"hr": 1, "temp": "warm", "hum": 0.5})


def test_float_to_int_is_refused_for_dataframes(signature: Signature) -> None:
    with pytest.raises(InvalidInput, match=r"^column 'hr': expected int64, got float64"):
        signature.enforce(_frame(hr=[1.0], temp=[0.5], hum=[0.5]))
    with pytest.raises(InvalidInput, match=r"^column 'hr': expected int64, got float 1.5"):
        signature.enforce({"hr": 1.5, "temp": 0.5, "hum": 0.5})
    with pytest.raises(InvalidInput, match=r"^column 'hr': expected int64, got the non-integer value 1.5"):
        signature.enforce(np.array([[1.5, 0.5, 0.5]]))


def test_whole_floats_pass_in_arrays_and_records(signature: Signature) -> None:
    array = np.array([[3.0, 0.5, np.nan]])
    assert signature.enforce(array) is array
    assert signature.enforce({"hr": 3.0, "temp": 0.5, "hum": None}).tolist()[0][:2] == [3.0, 0.5]


def test_null_in_a_non_nullable_column(signature: Signature) -> None:
    message = "^column 'temp': null value"
    with pytest.raises(InvalidInput, match=message):
        signature.enforce(_frame(hr=[1, 2], temp=[0.5, np.nan], hum=[0.5, 0.5]))
    with pytest.raises(InvalidInput, match=message):
        signature.enforce(np.array([[1.0, np.nan, 0.5]]))
    with pytest.raises(InvalidInput, match=message):
        signature.enforce([{"hr": 1, "temp": None, "hum": 0.5}])
    # the nullable column takes them
    out = signature.enforce(_frame(hr=[1], temp=[0.5], hum=[np.nan]))
    assert out["hum"].isna().all()


def test_extra_columns_drop_or_error(signature: Signature) -> None:
    frame = _frame(foo=[9], hum=[0.1], temp=[0.5], hr=[1])
    out = signature.enforce(frame)
    assert out.columns.tolist() == ["hr", "temp", "hum"]
    expected = r"^unexpected column 'foo' \(the model was trained without it; pass extra_columns='drop' to ignore it\)$"
    with pytest.raises(InvalidInput, match=expected):
        signature.enforce(frame, extra_columns="error")
    with pytest.raises(InvalidInput, match=expected):
        signature.enforce({"hr": 1, "temp": 0.5, "hum": 0.5, "foo": 9}, extra_columns="error")
    assert signature.enforce({"hr": 1, "temp": 0.5, "hum": 0.5, "foo": 9}).shape == (1, 3)


def test_int_to_float_upcast_is_accepted(signature: Signature) -> None:
    out = signature.enforce(_frame(hr=[1], temp=[2], hum=[3]))
    assert out.dtypes.tolist() == [np.dtype("int64"), np.dtype("float64"), np.dtype("float64")]
    assert signature.enforce(np.array([[1, 2, 3]])).dtype.kind == "i"


def test_array_shape_and_dtype(signature: Signature) -> None:
    with pytest.raises(InvalidInput, match=r"expected a 2-D array of shape \(n, 3\), got shape \(3,\)"):
        signature.enforce(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(InvalidInput, match=r"column 'hr' .*expected int64, got bool"):
        signature.enforce(np.array([[True, False, True]]))


def test_records_become_an_array_or_a_frame(signature: Signature) -> None:
    out = signature.enforce([{"hum": 0.1, "temp": 0.5, "hr": 1}, {"hr": 2, "temp": 0.25, "hum": None}])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[1, 0.5, 0.1], [2, 0.25, np.nan]])
    mixed = Signature((ColumnSpec("season", "string"), ColumnSpec("at", "datetime"), ColumnSpec("hr", "int64")))
    frame = mixed.enforce({"season": "winter", "at": "2011-01-01T05:00:00", "hr": 5})
    assert isinstance(frame, pd.DataFrame)
    assert frame["at"].dtype.kind == "M"
    with pytest.raises(InvalidInput, match="column 'at': expected datetime, got str 'soon'"):
        mixed.enforce({"season": "winter", "at": "soon", "hr": 5})


def test_string_and_bool_columns() -> None:
    sig = Signature((ColumnSpec("season", "string"), ColumnSpec("holiday", "bool")))
    frame = pd.DataFrame({"season": ["winter"], "holiday": [True]})
    assert sig.enforce(frame) is frame
    with pytest.raises(InvalidInput, match="column 'season': expected string, got int 3"):
        sig.enforce(pd.DataFrame({"season": pd.Series([3], dtype=object), "holiday": [True]}))
    with pytest.raises(InvalidInput, match="column 'holiday': expected bool, got int64"):
        sig.enforce(pd.DataFrame({"season": ["winter"], "holiday": [1]}))


def test_unsupported_inputs_are_clear(signature: Signature) -> None:
    with pytest.raises(InvalidInput, match=r"predict input must be .* got str"):
        signature.enforce("hr=1")
    with pytest.raises(InvalidInput, match=r"got list \(empty\)"):
        signature.enforce([])
    with pytest.raises(InvalidInput, match="extra_columns must be"):
        signature.enforce({"hr": 1}, extra_columns="keep")  # type: ignore[arg-type]


def test_params() -> None:
    sig = Signature(
        (ColumnSpec("a", "float64"),), params=(ParamSpec("k", "int64", 3), ParamSpec("mode", "string", "fast"))
    )
    assert sig.enforce_params(None) == {"k": 3, "mode": "fast"}
    assert sig.enforce_params({"k": 5}) == {"k": 5, "mode": "fast"}
    with pytest.raises(InvalidInput, match="unknown param 'x'"):
        sig.enforce_params({"x": 1})
    with pytest.raises(InvalidInput, match="param 'k': expected int64, got str"):
        sig.enforce_params({"k": "5"})
    with pytest.raises(InvalidInput, match="param 'k': expected int64, got bool"):
        sig.enforce_params({"k": True})
    with pytest.raises(InvalidInput, match="this model takes no params"):
        Signature((ColumnSpec("a", "float64"),)).enforce_params({"k": 1})


def test_plans_are_cached_per_columns_and_dtypes(signature: Signature) -> None:
    signature.enforce(_frame(hr=[1], temp=[0.5], hum=[0.5]))
    signature.enforce(_frame(hr=[2], temp=[0.7], hum=[0.1]))
    signature.enforce(_frame(hr=[2], temp=[1], hum=[0.1]))
    assert len(signature._plans) == 2


# --- property: any DataFrame matching the signature passes unchanged -------------------------------------------

PROPERTY_SIGNATURE = Signature(
    (
        ColumnSpec("i", "int64"),
        ColumnSpec("f", "float64"),
        ColumnSpec("n", "float64", nullable=True),
        ColumnSpec("b", "bool"),
        ColumnSpec("s", "string"),
    )
)
_finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def matching_frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(min_value=1, max_value=12))

    def column(strategy: st.SearchStrategy[object]) -> list[object]:
        return draw(st.lists(strategy, min_size=rows, max_size=rows))

    return pd.DataFrame(
        {
            "i": pd.Series(column(st.integers(-(2**62), 2**62)), dtype="int64"),
            "f": pd.Series(column(_finite), dtype="float64"),
            "n": pd.Series(column(st.one_of(st.none(), _finite)), dtype="float64"),
            "b": pd.Series(column(st.booleans()), dtype="bool"),
            "s": column(st.text(max_size=5)),
        }
    )


@settings(max_examples=60, deadline=None)
@given(matching_frames())
def test_matching_frames_pass_unchanged(frame: pd.DataFrame) -> None:
    before = frame.copy()
    out = PROPERTY_SIGNATURE.enforce(frame)
    pd.testing.assert_frame_equal(out, before)
    records = frame.drop(columns=["s"]).to_dict(orient="records")
    numeric = Signature(PROPERTY_SIGNATURE.inputs[:4])
    np.testing.assert_array_equal(numeric.enforce(records), frame.drop(columns=["s"]).to_numpy(dtype="float64"))


# --- property: a null is found in whichever column holds it, however pandas stores the columns ----------------

_NUMERIC_DTYPES = ("int64", "int32", "float64", "float32")


@st.composite
def numeric_frames_with_nulls(draw: st.DrawFn) -> tuple[Signature, pd.DataFrame, str | None]:
    """A signature over numeric columns, and a frame with its columns in any order (pandas then keeps same-dtype
    columns in blocks apart from their positions), NaNs in some float columns; the column the error must name."""
    count = draw(st.integers(min_value=1, max_value=8))
    dtypes = draw(st.lists(st.sampled_from(_NUMERIC_DTYPES), min_size=count, max_size=count))
    nullable = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    rows = draw(st.integers(min_value=1, max_value=4))
    specs = tuple(ColumnSpec(f"c{i}", d, nullable=n) for i, (d, n) in enumerate(zip(dtypes, nullable, strict=True)))
    columns: dict[str, pd.Series[float]] = {}
    holds_null: set[str] = set()
    for spec in specs:
        values = np.arange(rows, dtype="float64") + 0.5 if spec.dtype.startswith("float") else np.arange(rows)
        if spec.dtype.startswith("float") and draw(st.booleans()):
            values[draw(st.integers(0, rows - 1))] = np.nan
            holds_null.add(spec.name)
        columns[spec.name] = pd.Series(values, dtype=spec.dtype)
    order = draw(st.permutations([s.name for s in specs]))
    frame = pd.DataFrame({name: columns[name] for name in order})
    expected = next((s.name for s in specs if s.name in holds_null and not s.nullable), None)
    return Signature(specs), frame, expected


@settings(max_examples=80, deadline=None)
@given(numeric_frames_with_nulls())
def test_nulls_are_found_in_any_column_layout(case: tuple[Signature, pd.DataFrame, str | None]) -> None:
    signature, frame, expected = case
    if expected is None:
        out = signature.enforce(frame)
        assert out.columns.tolist() == list(signature.column_names)
    else:
        with pytest.raises(InvalidInput, match=f"^column '{expected}': null value"):
            signature.enforce(frame)
