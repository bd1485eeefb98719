"""`loopml data profile | contract infer | validate` on files, as a CI job would run them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from loopml.data import Contract, Profile

from .conftest import Cli

HOUR_CSV = Path(__file__).resolve().parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"


@pytest.fixture
def years(tmp_path: Path) -> tuple[Path, Path]:
    hours = pd.read_csv(HOUR_CSV)
    first, second = tmp_path / "hour-2011.csv", tmp_path / "hour-2012.parquet"
    hours[hours["yr"] == 0].to_csv(first, index=False)
    hours[hours["yr"] == 1].to_parquet(second, index=False)
    return first, second


def test_profile_writes_json_and_prints_a_table(cli: Cli, years: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    result = cli("data", "profile", str(years[0]), "--out", str(out), "--columns", "temp,season,dteday")
    assert result.exit_code == 0, result.output
    assert "temp" in result.output
    assert "2011-01-01" in result.output
    profile = Profile.from_json(out.read_text())
    assert list(profile.columns) == ["temp", "season", "dteday"]
    assert profile.row_count == 8645
    as_json = cli("data", "profile", str(years[0]), "--columns", "temp", "--json")
    assert json.loads(as_json.output)["columns"][0]["name"] == "temp"


def test_infer_then_validate(cli: Cli, years: tuple[Path, Path], tmp_path: Path) -> None:
    inferred = cli("data", "contract", "infer", str(years[0]))
    assert inferred.exit_code == 0, inferred.output
    contract = Contract.from_yaml(inferred.output)
    assert contract.columns["temp"].dtype.type == "float"
    path = tmp_path / "contract.yaml"
    path.write_text(inferred.output)

    same = cli("data", "validate", str(years[0]), "--contract", str(path))
    assert same.exit_code == 0, same.output
    assert "passed" in same.output

    later = cli("data", "validate", str(years[1]), "--contract", str(path))
    assert later.exit_code == 0, later.output  # out-of-range counts only warn
    assert "yr" in later.output
    assert "warn" in later.output

    report = json.loads(cli("data", "validate", str(years[1]), "--contract", str(path), "--json").output)
    assert report["passed"] is True
    assert {f["column"] for f in report["failures"]} >= {"yr", "instant"}


def test_validate_exits_1_on_a_blocking_violation(cli: Cli, years: tuple[Path, Path], tmp_path: Path) -> None:
    path = tmp_path / "contract.yaml"
    path.write_text(
        cli("data", "contract", "infer", str(years[0])).output.replace(
            "yr:\n    dtype: {type: integer, severity: block}\n    nulls: {max_rate: 0.0, severity: block}\n"
            "    range: {min: 0, max: 0, tolerance: 0.1, severity: warn}",
            "yr:\n    dtype: {type: integer, severity: block}\n    nulls: {max_rate: 0.0, severity: block}\n"
            "    range: {min: 0, max: 0, tolerance: 0.1, severity: block}",
        )
    )
    assert "severity: block}\n  mnth" in path.read_text()
    result = cli("data", "validate", str(years[1]), "--contract", str(path))
    assert result.exit_code == 1
    assert "FAILED" in result.output
    assert "block" in result.output


def test_infer_from_a_profile_with_freshness(cli: Cli, years: tuple[Path, Path], tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    cli("data", "profile", str(years[0]), "--out", str(profile))
    out = tmp_path / "contract.yaml"
    result = cli("data", "contract", "infer", str(profile), "--max-age", "2d", "--out", str(out))
    assert result.exit_code == 0, result.output
    contract = Contract.from_yaml(out.read_text())
    assert contract.freshness is not None
    assert contract.freshness.column == "dteday"
    stale = cli("data", "validate", str(years[0]), "--contract", str(out))
    assert stale.exit_code == 0  # freshness warns by default
    assert "freshness" in stale.output


def test_bad_input_exits_2_with_a_message(cli: Cli, years: tuple[Path, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("columns:\n  x:\n    dtype: decimal\n")
    result = cli("data", "validate", str(years[0]), "--contract", str(broken))
    assert result.exit_code == 2
    assert "line 3, columns.x.dtype.type" in result.output
    missing = cli("data", "profile", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2
    assert "no such file" in missing.output


def test_drift_prints_each_column_and_exits_1_only_when_the_dataset_drifts(
    cli: Cli, years: tuple[Path, Path], tmp_path: Path
) -> None:
    first, second = (str(p) for p in years)
    result = cli("data", "drift", first, second)
    assert result.exit_code == 0, result.output  # 5 of 16 columns drift: below the 50% share
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 2}
    assert "yes" in rows["registered"] and "psi" in rows["registered"]
    assert "yes" in rows["yr"]  # 0 all 2011, 1 all 2012: a constant column that moved
    assert "no" in rows["hr"]
    assert "no drift: 5 of 16 columns drifted" in result.output

    drifted = cli("data", "drift", first, second, "--share-threshold", "0.3", "--json")
    assert drifted.exit_code == 1
    report = json.loads(drifted.output)
    assert report["drifted"] is True
    assert set(report["drifted_columns"]) == {"instant", "yr", "casual", "registered", "cnt"}

    profile = tmp_path / "profile.json"
    assert cli("data", "profile", first, "--out", str(profile)).exit_code == 0
    chosen = ("--columns", "temp,hr", "--method", "temp=wasserstein", "--threshold", "hr=0.2", "--json")
    from_profile = json.loads(cli("data", "drift", str(profile), second, *chosen).output)
    assert from_profile == json.loads(cli("data", "drift", first, second, *chosen).output)
    temp, hr = from_profile["columns"]
    assert (temp["method"], hr["method"], hr["threshold"]) == ("wasserstein", "psi", 0.2)


def test_drift_bad_input_exits_2_with_a_message(cli: Cli, years: tuple[Path, Path], tmp_path: Path) -> None:
    first, second = (str(p) for p in years)
    for args, message in (
        ((first, str(tmp_path / "none.csv")), "no such file"),
        ((first, second, "--method", "temp"), "--method takes COLUMN=VALUE"),
        ((first, second, "--method", "temp=median"), "unknown drift method 'median'"),
        ((first, second, "--columns", "tmep"), "no column 'tmep'"),
    ):
        result = cli("data", "drift", *args)
        assert result.exit_code == 2, result.output
        assert message in result.output
