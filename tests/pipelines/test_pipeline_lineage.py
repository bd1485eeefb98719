"""The bike demo pipeline end to end: datasets and models between steps, registration, and lineage."""

from __future__ import annotations

from pathlib import Path

import pytest

import loopml as lm
from loopml.errors import InvalidInput, NotFound

BIKE = Path(__file__).resolve().parents[2] / "examples" / "bike" / "pipeline.py"
WINDOW = {"start": "2011-01-01", "end": "2011-02-01", "holdout_end": "2011-02-15", "max_depth": 3}


def test_retrain_registers_a_model_whose_lineage_names_its_data_and_code(client: lm.Client) -> None:
    run = client.pipelines.run(f"{BIKE}:retrain", WINDOW, executor="process")
    assert run.status == "FINISHED", run
    metrics = run.result
    assert set(metrics) == {"rmse", "mae", "rows"}
    assert metrics["rows"] == 328  # the hours recorded from 2011-02-01 to 2011-02-14 (some are missing)
    version = client.models.resolve("models:/bike-demand/1")
    train = run.steps["train"]
    assert (version.run_id, version.artifact_path) == (train.run_id, "outputs/bike-demand")
    loaded = client.models.load("models:/bike-demand/1")
    assert loaded.manifest.flavor == "sklearn"

    found = client.pipelines.lineage("models:/bike-demand/1")
    assert found.subject == "models:/bike-demand/1"
    assert {s.step for s in found.steps} == {"train", "load"}
    [dataset] = found.datasets
    assert (dataset["name"], dataset["source"]) == ("bike-hourly", "hour.csv[2011-01-01, 2011-02-01)")
    assert dataset["rows"] == "688"  # the hours recorded in January 2011
    load = next(s for s in found.steps if s.step == "load")
    assert load.components["params"] == {"start": "2011-01-01", "end": "2011-02-01"}
    assert any(key.endswith(":load") for key in load.components["code"])
    assert any(key.endswith(":DATA") for key in load.components["code"])  # the data path is part of the code
    [code] = found.code.values()
    assert code["pipeline"] == "retrain"
    assert code["ref"] == f"{BIKE}:retrain"
    assert {"model_version:bike-demand/1", f"step:{train.run_id}"} <= {
        f"{e.target_kind}:{e.target_id}" for e in found.edges
    }
    as_json = found.to_json()
    assert as_json["datasets"][0]["name"] == "bike-hourly"
    assert {s["step"] for s in as_json["steps"]} == {"train", "load"}

    again = client.pipelines.run(f"{BIKE}:retrain", WINDOW, executor="inline")
    assert {s.state.value for s in again.steps.values()} == {"cached"}
    assert [v.version for v in client.models.versions("bike-demand")] == [1]  # a cache hit registers nothing
    assert again.result == metrics


def test_lineage_of_unknown_or_malformed_references(client: lm.Client) -> None:
    with pytest.raises(InvalidInput, match="cannot read 'bike' as a lineage subject"):
        client.pipelines.lineage("bike")
    with pytest.raises(NotFound):
        client.pipelines.lineage("models:/nothing/1")
    with pytest.raises(NotFound, match="no lineage is recorded"):
        client.pipelines.lineage("a" * 64)
