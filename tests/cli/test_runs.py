from __future__ import annotations

import orjson

from .conftest import Cli, Runs


def test_experiments_list_human_and_json(cli: Cli, runs: Runs) -> None:
    human = cli("experiments", "list")
    assert human.exit_code == 0, human.output
    assert "bike" in human.stdout
    assert "default" in human.stdout

    result = cli("experiments", "list", "--json")
    assert result.exit_code == 0
    [experiment] = orjson.loads(result.stdout)
    assert (experiment["name"], experiment["project"]) == ("bike", "default")


def test_runs_list_shows_ids_status_and_metric_and_param_columns(cli: Cli, runs: Runs) -> None:
    result = cli("runs", "list", "bike")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "run id" in line)
    for column in ("name", "status", "start time", "metrics.rmse", "params.lr", "params.model"):
        assert column in header
    good = next(line for line in lines if runs.good in line)
    assert "gbm-1" in good
    assert "FINISHED" in good
    assert "41.5" in good
    assert "T" in good
    assert "FAILED" in next(line for line in lines if runs.bad in line)


def test_runs_list_json_and_max_results(cli: Cli, runs: Runs) -> None:
    result = cli("runs", "list", "bike", "--json")
    assert result.exit_code == 0
    listed = orjson.loads(result.stdout)
    assert {r["id"] for r in listed} == {runs.good, runs.bad}

    one = orjson.loads(cli("runs", "list", "bike", "--max-results", "1", "--json").stdout)
    assert len(one) == 1


def test_runs_show_human(cli: Cli, runs: Runs) -> None:
    result = cli("runs", "show", runs.good)
    assert result.exit_code == 0, result.output
    for text in (
        runs.good,
        "gbm-1",
        "FINISHED",
        "lr",
        "0.1",
        "rmse",
        "41.5",
        "team",
        "bike-hourly",
        "model.txt",
    ):
        assert text in result.stdout
    rmse = next(line for line in result.stdout.splitlines() if "rmse" in line)
    assert "41.5" in rmse
    assert "50" not in rmse


def test_runs_show_json_has_latest_metrics_datasets_and_artifacts(cli: Cli, runs: Runs) -> None:
    result = cli("runs", "show", runs.good, "--json")
    assert result.exit_code == 0
    shown = orjson.loads(result.stdout)
    assert shown["id"] == runs.good
    assert shown["metrics"] == {"rmse": 41.5}
    assert shown["params"] == {"lr": "0.1", "model": "gbm"}
    assert shown["tags"]["team"] == "ds"
    assert [(d["name"], d["rows"], d["role"]) for d in shown["datasets"]] == [("bike-hourly", 3, "training")]
    assert [a["path"] for a in shown["artifacts"]] == ["model.txt"]


def test_runs_search_filters_and_orders(cli: Cli, runs: Runs) -> None:
    result = cli("runs", "search", "bike", "--filter", "metrics.rmse < 45", "--json")
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in orjson.loads(result.stdout)] == [runs.good]

    ordered = cli(
        "runs",
        "search",
        "bike",
        "--order-by",
        "metrics.rmse DESC",
        "--order-by",
        "attributes.run_name",
        "--json",
    )
    assert [r["id"] for r in orjson.loads(ordered.stdout)] == [runs.bad, runs.good]

    human = cli("runs", "search", "bike", "--filter", "params.model = 'linear'")
    assert runs.bad in human.stdout
    assert runs.good not in human.stdout


def test_runs_search_tells_when_more_runs_match(cli: Cli, runs: Runs) -> None:
    result = cli("runs", "search", "bike", "--max-results", "1", "--json")
    assert result.exit_code == 0
    assert len(orjson.loads(result.stdout)) == 1  # stdout stays one JSON document
    assert "more runs match" in result.stderr


def test_bad_filter_exits_2_with_the_parser_message(cli: Cli, runs: Runs) -> None:
    result = cli("runs", "search", "bike", "--filter", "metrics.rmse <")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid filter at position 14")
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_unknown_run_and_experiment_exit_2(cli: Cli, runs: Runs) -> None:
    missing = cli("runs", "show", "0" * 32)
    assert missing.exit_code == 2
    assert "error:" in missing.stderr
    assert "0" * 32 in missing.stderr
    assert "Traceback" not in missing.output

    assert cli("runs", "list", "no-such-experiment").exit_code == 2


def test_usage_error_exits_2(cli: Cli) -> None:
    assert cli("runs", "list", "bike", "--max-results", "0").exit_code == 2
