"""Batch scoring (`loopml predict`): chunked Parquet/CSV in, Parquet out, identical to one big predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import loopml as lm
from loopml.cli import app
from loopml.errors import InvalidInput
from loopml.registry import LoadedModel, load_model
from loopml.serving.batch import count_rows, score_file

from .conftest import DATA, FEATURES, Packages

ROWS = 250_000


@pytest.fixture(scope="module")
def big_frame() -> pd.DataFrame:
    """hour.csv repeated to 250,000 rows, with its id and target columns kept (they pass through)."""
    hours = pd.read_csv(DATA)
    repeats = -(-ROWS // len(hours))
    return pd.concat([hours] * repeats, ignore_index=True).iloc[:ROWS]


@pytest.fixture(scope="module")
def big_parquet(big_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("batch") / "hours.parquet"
    big_frame.to_parquet(path, row_group_size=37_000)  # row groups that do not line up with the chunks
    return path


@pytest.fixture
def model(packages: Packages) -> LoadedModel:
    return load_model(packages.v2)


def test_parquet_scored_in_chunks_equals_one_predict(
    model: LoadedModel, packages: Packages, big_frame: pd.DataFrame, big_parquet: Path, tmp_path: Path
) -> None:
    seen: list[int] = []
    result = score_file(model, big_parquet, tmp_path / "scored.parquet", chunk_rows=60_000, progress=seen.append)
    assert (result.rows, result.chunks) == (ROWS, 5)
    assert seen == [60_000] * 4 + [10_000]
    assert count_rows(big_parquet) == ROWS
    scored = pq.read_table(result.destination).to_pandas()
    assert list(scored.columns) == [*big_frame.columns, "prediction"]
    pd.testing.assert_frame_equal(scored.drop(columns="prediction"), big_frame)
    # the compiled tree path sums in another order than sklearn: equal to 1e-12, not bit for bit
    np.testing.assert_allclose(
        scored["prediction"].to_numpy(), packages.models[2].predict(big_frame[FEATURES]), rtol=1e-12
    )
    assert list(tmp_path.iterdir()) == [result.destination]  # no temporary file left over


def test_csv_input_streams_and_matches(model: LoadedModel, packages: Packages, tmp_path: Path) -> None:
    hours = pd.read_csv(DATA)
    source = tmp_path / "hours.csv"
    hours.to_csv(source, index=False)
    result = score_file(model, source, tmp_path / "out" / "scored.parquet", chunk_rows=5_000)
    assert (result.rows, result.chunks) == (len(hours), 4)
    assert count_rows(source) is None
    scored = pq.read_table(result.destination).to_pandas()
    assert len(scored) == len(hours) and scored["dteday"].astype(str).tolist() == hours["dteday"].tolist()
    np.testing.assert_allclose(scored["prediction"].to_numpy(), packages.models[2].predict(hours[FEATURES]))


def test_parallel_chunks_keep_row_order(model: LoadedModel, tmp_path: Path) -> None:
    source = tmp_path / "hours.parquet"
    pd.read_csv(DATA).to_parquet(source)
    serial = score_file(model, source, tmp_path / "serial.parquet", chunk_rows=1_000, workers=1)
    parallel = score_file(model, source, tmp_path / "parallel.parquet", chunk_rows=1_000, workers=3)
    assert serial.chunks == parallel.chunks == 18
    assert pq.read_table(serial.destination).equals(pq.read_table(parallel.destination))


def test_empty_input_gives_an_empty_output_with_the_columns(model: LoadedModel, tmp_path: Path) -> None:
    source = tmp_path / "none.parquet"
    pd.read_csv(DATA).iloc[:0].to_parquet(source)
    result = score_file(model, source, tmp_path / "scored.parquet")
    table = pq.read_table(result.destination)
    assert (result.rows, table.num_rows) == (0, 0)
    assert table.column_names[-1] == "prediction" and "hum" in table.column_names


def test_missing_column_is_a_clear_error_and_leaves_no_output(model: LoadedModel, tmp_path: Path) -> None:
    source = tmp_path / "hours.parquet"
    pd.read_csv(DATA).iloc[:1_000].drop(columns="hum").to_parquet(source)
    destination = tmp_path / "scored.parquet"
    with pytest.raises(InvalidInput, match=r"chunk 1 \(rows 0-399\).*hum") as raised:
        score_file(model, source, destination, chunk_rows=400)
    assert str(source) in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hours.parquet"]


def test_a_bad_later_chunk_keeps_the_previous_output(model: LoadedModel, tmp_path: Path) -> None:
    hours = pd.read_csv(DATA).iloc[:1_000].copy()
    hours["temp"] = hours["temp"].astype(object)
    hours.loc[700, "temp"] = "warm"  # a string where the signature wants a float
    source, destination = tmp_path / "hours.csv", tmp_path / "scored.parquet"
    hours.to_csv(source, index=False)
    destination.write_bytes(b"previous result")
    with pytest.raises(InvalidInput, match=r"hours\.csv: .*column 'temp'.*'warm'"):
        score_file(model, source, destination, chunk_rows=500)
    assert destination.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hours.csv", "scored.parquet"]


def test_refuses_unknown_formats_and_a_prediction_column(model: LoadedModel, tmp_path: Path) -> None:
    source = tmp_path / "hours.json"
    source.write_text("{}")
    with pytest.raises(InvalidInput, match=r"\.parquet, \.pq or \.csv"):
        score_file(model, source, tmp_path / "out.parquet")
    taken = tmp_path / "taken.parquet"
    pd.read_csv(DATA).iloc[:10].assign(prediction=1.0).to_parquet(taken)
    with pytest.raises(InvalidInput, match="already has a 'prediction' column"):
        score_file(model, taken, tmp_path / "out.parquet")
    with pytest.raises(InvalidInput, match="chunk_rows"):
        score_file(model, taken, tmp_path / "out.parquet", chunk_rows=0)
    with pytest.raises(InvalidInput, match="workers"):
        score_file(model, taken, tmp_path / "out.parquet", workers=0)
    assert not (tmp_path / "out.parquet").exists()


def test_cli_scores_a_registered_model_by_alias(
    big_parquet: Path, packages: Packages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    home = tmp_path / "home"
    monkeypatch.setenv("LOOPML_HOME", str(home))
    for name in ("LOOPML_TRACKING_URI", "LOOPML_TOKEN", "LOOPML_DATABASE_URL", "LOOPML_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    train = pd.read_csv(DATA).iloc[:3000]
    estimator = HistGradientBoostingRegressor(max_iter=15, random_state=0).fit(train[FEATURES], train["cnt"])
    with lm.Client(home=home) as client:
        run = client.runs.create("bike", "hgb")
        version = client.models.log(
            run.id, estimator, "bike-demand", input_example=train[FEATURES].iloc[:5], register=True
        )
        client.runs.end(run.id)
        client.models.set_alias("bike-demand", "champion", version.version)  # type: ignore[union-attr]

    destination = tmp_path / "scored.parquet"
    result = CliRunner().invoke(
        app, ["predict", "bike-demand@champion", str(big_parquet), str(destination), "--chunk-rows", "100000"]
    )
    assert result.exit_code == 0, result.output
    assert f"scored {ROWS:,} rows in 3 chunks" in result.stdout
    scored = pq.read_table(destination, columns=[*FEATURES, "prediction"]).to_pandas()
    np.testing.assert_allclose(scored["prediction"].to_numpy(), estimator.predict(scored[FEATURES]), rtol=1e-12)

    from_csv = CliRunner().invoke(app, ["predict", "bike-demand@champion", str(DATA), str(tmp_path / "x.parquet")])
    assert from_csv.exit_code == 0, from_csv.output
    missing = CliRunner().invoke(app, ["predict", "bike-demand@nope", str(big_parquet), str(tmp_path / "y.parquet")])
    assert missing.exit_code == 2 and "error:" in missing.output and "Traceback" not in missing.output
    direct = CliRunner().invoke(app, ["predict", str(packages.v2), str(DATA), str(tmp_path / "z.parquet")])
    assert direct.exit_code == 0, direct.output
