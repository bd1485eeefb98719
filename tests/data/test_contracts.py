"""Data contracts: inference, YAML round trip and errors, batch checks on hostile input, the one-row path."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pandas as pd
import pytest

from loopml.data import (
    Contract,
    ContractReport,
    build_profile,
    compile_row_validator,
    infer_contract,
    validate_batch,
)
from loopml.errors import InvalidInput


@pytest.fixture
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 1000
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "price": rng.uniform(10.0, 20.0, n),
            "rooms": rng.integers(1, 6, n),
            "city": rng.choice(["paris", "lyon", "nice"], n),
            "note": np.where(rng.random(n) < 0.1, None, "ok"),
            "seen": pd.date_range("2024-05-01", periods=n, freq="min", tz="UTC"),
        }
    )


@pytest.fixture
def contract(reference: pd.DataFrame) -> Contract:
    return infer_contract(reference, name="homes", max_age="2d")


def failing(report: ContractReport) -> set[tuple[str | None, str]]:
    return {(r.column, r.check) for r in report.failures}


NOW = datetime.datetime(2024, 5, 2, tzinfo=datetime.timezone.utc)


def test_inference_reads_the_reference(contract: Contract) -> None:
    price = contract.columns["price"]
    assert price.dtype.type == "float"
    assert price.dtype.severity == "block"
    assert price.nulls is not None
    assert price.nulls.max_rate == 0.0
    assert price.range is not None
    assert (price.range.tolerance, price.range.severity) == (0.1, "warn")
    assert contract.columns["rooms"].range is not None
    assert (contract.columns["rooms"].range.min, contract.columns["rooms"].range.max) == (1, 5)
    assert contract.columns["city"].categories is not None
    assert contract.columns["city"].categories.allowed == ["lyon", "nice", "paris"]
    assert contract.columns["id"].unique is not None
    assert contract.columns["price"].unique is None  # unique floats are measurements, not keys
    note = contract.columns["note"].nulls
    assert note is not None
    assert note.severity == "warn"
    assert 0.1 < note.max_rate < 0.2
    assert contract.freshness is not None
    assert contract.freshness.column == "seen"
    assert infer_contract(build_profile(pd.DataFrame({"x": [1.0, 2.0]}))).columns["x"].dtype.type == "float"


def test_the_reference_passes_its_own_contract(reference: pd.DataFrame, contract: Contract) -> None:
    report = validate_batch(reference, contract, now=NOW)
    assert report.passed
    assert report.failures == []


def test_yaml_round_trip_and_readable_format(contract: Contract) -> None:
    text = contract.to_yaml()
    assert text.startswith("# loopml data contract")
    assert "price:\n    dtype: {type: float, severity: block}" in text
    assert Contract.from_yaml(text) == contract
    edited = text.replace("dtype: {type: float, severity: block}", "dtype: float")  # shorthand a person may write
    assert Contract.from_yaml(edited).columns["price"].dtype.type == "float"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("columns:\n  x: {dtype: {type: float}\n", "line 3"),  # unclosed flow mapping
        ("version: 1\ncolumns:\n  x:\n    dtype: {type: decimal}\n", "line 4, columns.x.dtype.type"),
        ("columns:\n  x:\n    dtype: float\n    range: {min: low}\n", "line 4, columns.x.range.min"),
        ("columns:\n  x:\n    dtype: float\n    nulls: {max_rate: 2}\n", "line 4, columns.x.nulls.max_rate"),
        ("columns:\n  x:\n    dtype: float\n    ranges: {min: 1}\n", "line 4, columns.x.ranges: unknown field"),
        ("columns:\n  x:\n    dtype: {type: float, severity: maybe}\n", "columns.x.dtype.severity"),
        ("columns:\n  x:\n    nulls: {max_rate: 0}\n", "line 2, columns.x: missing dtype"),
        ("rows: {min: -1}\ncolumns: {}\n", "line 1, rows.min"),
        ("freshness: {column: t, max_age: soon}\ncolumns: {}\n", "freshness.max_age"),
        ("columns:\n  x:\n    dtype: float\n    range: {min: 5, max: 1}\n", "columns.x.range: min 5.0 is above max"),
        ("- just\n- a list\n", "(top level): expected a mapping"),
        ("version: 1\n", "columns: missing"),
    ],
)
def test_malformed_yaml_names_the_line_and_field(text: str, where: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Contract.from_yaml(text, source="c.yaml")
    assert caught.value.message.startswith("c.yaml: ")
    assert where in caught.value.message


def test_batch_report_lists_each_failure_with_examples(reference: pd.DataFrame, contract: Contract) -> None:
    batch = reference.copy()
    batch.loc[3, "price"] = 1000.0
    batch.loc[[5, 6], "city"] = "berlin"
    batch.loc[7, "id"] = 8
    batch.loc[9, "price"] = np.nan
    report = validate_batch(batch, contract, now=NOW)
    assert failing(report) == {("price", "range"), ("city", "categories"), ("id", "unique"), ("price", "nulls")}
    assert not report.passed  # price must not be null: block
    by_check = {(r.column, r.check): r for r in report.failures}
    assert by_check[("price", "range")].examples == [{"row": 3, "value": 1000.0}]
    assert by_check[("city", "categories")].failing == 2
    assert "'berlin'" in by_check[("city", "categories")].message
    assert by_check[("id", "unique")].failing == 2
    assert [e["row"] for e in by_check[("id", "unique")].examples] == [7, 8]
    json.dumps(report.to_dict(), allow_nan=False)


def test_warnings_alone_pass(reference: pd.DataFrame, contract: Contract) -> None:
    batch = reference.copy()
    batch.loc[0, "city"] = "berlin"
    report = validate_batch(batch, contract, now=NOW)
    assert report.passed
    assert [r.check for r in report.warnings] == ["categories"]


def test_freshness_and_row_count(reference: pd.DataFrame, contract: Contract) -> None:
    late = datetime.datetime(2024, 6, 1, tzinfo=datetime.timezone.utc)
    report = validate_batch(reference, contract, now=late)
    assert failing(report) == {("seen", "freshness")}
    assert "expected at most 2d" in report.failures[0].message
    as_text = reference.assign(seen=reference["seen"].astype(str))
    assert ("seen", "freshness") in failing(validate_batch(as_text, contract, now=late))


def test_hostile_batches_give_a_clear_result(contract: Contract, reference: pd.DataFrame) -> None:
    wrong_types = reference.assign(price=["cheap"] + [15.0] * (len(reference) - 1), rooms=2.5)
    report = validate_batch(wrong_types, contract, now=NOW)
    assert {("price", "dtype"), ("rooms", "dtype")} <= failing(report)
    assert not report.passed
    price_type = next(r for r in report.failures if r.column == "price" and r.check == "dtype")
    assert price_type.failing == 1
    assert price_type.examples == [{"row": 0, "value": "cheap"}]

    all_null = reference.assign(price=None, city=None)
    assert {("price", "nulls"), ("city", "nulls")} <= failing(validate_batch(all_null, contract, now=NOW))

    empty = validate_batch(pd.DataFrame(), contract, now=NOW)
    assert ("price", "dtype") in failing(empty)
    assert (None, "rows") in failing(empty)
    assert not empty.passed
    assert "column is missing" in {r.message for r in empty.failures}
    empty_columns = validate_batch(reference.iloc[:0], contract, now=NOW)
    assert failing(empty_columns) == {(None, "rows"), ("seen", "freshness")}

    extreme = reference.assign(price=np.r_[np.inf, -np.inf, np.full(len(reference) - 2, 15.0)])
    report = validate_batch(extreme, contract, now=NOW)
    rng = next(r for r in report.failures if r.check == "range")
    assert rng.failing == 2
    assert rng.examples[0]["value"] == "inf"

    huge = reference.assign(city=["x" * 1_000_000] + ["paris"] * (len(reference) - 1))
    report = validate_batch(huge, contract, now=NOW)
    categories = next(r for r in report.failures if r.check == "categories")
    assert len(categories.examples[0]["value"]) < 200
    assert len(categories.message) < 300


# --- the inline, one-row path ------------------------------------------------------------------------


def test_row_validator_accepts_a_good_row_and_names_each_bad_field(contract: Contract) -> None:
    check = compile_row_validator(contract)
    good = {"id": 1, "price": 12.5, "rooms": 3, "city": "nice", "note": None, "seen": "2024-05-01T10:00:00"}
    assert check(good) == []
    assert check({**good, "rooms": 3.0, "extra": "ignored"}) == []
    bad = check({**good, "price": "12", "rooms": True, "city": "berlin", "id": None})
    assert {(v.column, v.check, v.severity) for v in bad} == {
        ("price", "dtype", "block"),
        ("rooms", "dtype", "block"),
        ("city", "categories", "warn"),
        ("id", "nulls", "block"),
    }
    missing = check({k: v for k, v in good.items() if k != "price"})
    assert [(v.column, v.check) for v in missing] == [("price", "dtype")]
    assert "missing" in missing[0].message


@pytest.mark.parametrize(
    ("value", "check_name"),
    [
        (float("nan"), "nulls"),
        (float("inf"), "range"),
        (-1e308, "range"),
        ([1, 2], "dtype"),
        ({"a": 1}, "dtype"),
        ("x" * 1_000_000, "dtype"),
    ],
)
def test_row_validator_on_hostile_values(contract: Contract, value: object, check_name: str) -> None:
    good = {"id": 1, "price": 12.5, "rooms": 3, "city": "nice", "note": None, "seen": "2024-05-01"}
    found = compile_row_validator(contract)({**good, "price": value})
    assert [(v.column, v.check) for v in found] == [("price", check_name)]
    assert len(found[0].message) < 200


def test_row_validator_type_rules() -> None:
    contract = Contract.from_yaml(
        "columns:\n"
        "  n: {dtype: integer}\n"
        "  f: {dtype: float}\n"
        "  b: {dtype: boolean, categories: {allowed: [true]}}\n"
        "  t: {dtype: datetime}\n"
    )
    check = compile_row_validator(contract)
    assert check({"n": 2, "f": 1, "b": True, "t": "2024-01-01"}) == []
    found = check({"n": 2.5, "f": False, "b": False, "t": "yesterday"})
    assert {(v.column, v.check) for v in found} == {("n", "dtype"), ("f", "dtype"), ("b", "categories"), ("t", "dtype")}
