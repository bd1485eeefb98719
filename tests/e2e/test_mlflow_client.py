"""The real MLflow client, unchanged, against a real `loopml server` process (SQLite and PostgreSQL).

The client runs in its own process, as users' code does, in the first interpreter that has MLflow (and what
the flow needs: matplotlib, scikit-learn): `LOOPML_MLFLOW_PYTHON`, this one (the dev extras pin
mlflow-skinny), or the repository's `.venv-anchors` (where the benchmarks keep MLflow). The flows live in
`mlflow_client_flows.py`; each prints one JSON object checked here.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ADMIN, ServerProcess

FLOWS = Path(__file__).with_name("mlflow_client_flows.py")
ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _can_import(python: str, modules: tuple[str, ...]) -> bool:
    if python == sys.executable:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    probe = subprocess.run([python, "-c", f"import {', '.join(modules)}"], capture_output=True, timeout=120)
    return probe.returncode == 0


def mlflow_python(*extra: str) -> str | None:
    """The first interpreter that can import mlflow and `extra`: LOOPML_MLFLOW_PYTHON, this one, .venv-anchors."""
    candidates = [
        os.environ.get("LOOPML_MLFLOW_PYTHON"),
        sys.executable,
        str(ROOT / ".venv-anchors" / "bin" / "python"),
    ]
    for python in candidates:
        if python and Path(python).exists() and _can_import(python, ("mlflow", *extra)):
            return python
    return None


def run_flow(server: ServerProcess, flow: str, needs: tuple[str, ...] = (), **env: str) -> dict[str, Any]:
    python = mlflow_python(*needs)
    if python is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: no interpreter imports mlflow and {needs} (set LOOPML_MLFLOW_PYTHON)")
        pytest.skip(f"no interpreter imports mlflow and {needs}: set LOOPML_MLFLOW_PYTHON or create .venv-anchors")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LOOPML_"))}
    environment.pop("PYTHONPATH", None)  # the client's environment is its own
    environment.update(
        MLFLOW_TRACKING_URI=server.uri,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",  # a 5xx must fail the flow, not be retried for minutes
        MLFLOW_ENABLE_ASYNC_LOGGING="false",
        GIT_PYTHON_REFRESH="quiet",
        MPLBACKEND="Agg",
        **(env if env else {"MLFLOW_TRACKING_TOKEN": ADMIN}),
    )
    done = subprocess.run([python, str(FLOWS), flow], capture_output=True, text=True, env=environment, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"flow {flow} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return result


def test_the_quickstart_flow_lands_in_loopml(server: ServerProcess) -> None:
    result = run_flow(server, "quickstart")
    assert result["status"] == "FINISHED" and result["run_name"] == "baseline"
    assert result["params"] == {"learning_rate": "0.01"}
    assert result["metrics"] == {"accuracy": 0.94, "loss": 0.1}
    assert result["tags"] == {"team": "risk", "stage": "dev", "mlflow.runName": "baseline"}
    assert result["loss_steps"] == list(range(10))
    assert result["artifacts"] == ["config", "notes.txt", "texts"]
    assert result["notes"] == "threshold 0.7"
    assert result["features"] == {"features": ["amount", "hour"]}
    assert result["search"] == [[result["run_id"], 0.94], [result["child"], 0.91]]
    assert result["nested"] == [result["child"]]

    import loopml

    with loopml.Client(server.uri, token=ADMIN) as client:  # the same run, read through loopml's own API
        run = client.runs.get(result["run_id"])
        assert run.params == {"learning_rate": "0.01"}
        assert run.metrics["accuracy"] == 0.94
        assert run.experiment_id == int(result["experiment_id"])
        child = client.runs.get(result["child"])
        assert child.parent_run_id == result["run_id"]
        assert sorted(a.path for a in client.runs.artifacts(result["run_id"])) == [
            "config/features.json",
            "notes.txt",
            "texts/hello.txt",
        ]


def test_batch_limits_and_error_codes(server: ServerProcess) -> None:
    result = run_flow(server, "limits")
    assert result["metric_keys"] == 10 and result["history"] == 100 and result["params"] == 100
    assert result["over"] == dict.fromkeys(("metrics", "params", "tags"), "INVALID_PARAMETER_VALUE")
    assert result["missing_run"] == "RESOURCE_DOES_NOT_EXIST"
    assert result["missing_experiment"] == "RESOURCE_DOES_NOT_EXIST"
    assert result["duplicate_experiment"] == "RESOURCE_ALREADY_EXISTS"
    assert result["changed_param"] == "INVALID_PARAMETER_VALUE"


def test_search_pages_and_delete_restore(server: ServerProcess) -> None:
    result = run_flow(server, "paging")
    assert result["in_order"] and result["pages"] == 3
    assert result["active_after_delete"] == 24 and result["deleted"] and result["lifecycle"] == "deleted"
    assert result["after_restore"] == 25
    assert result["best"] == [0.96, 0.92]


def test_log_dict_figure_and_input(server: ServerProcess) -> None:
    result = run_flow(server, "logging_helpers", needs=("matplotlib", "pandas"))
    assert result["artifacts"] == ["conf.json", "plots"]
    assert result["conf"] == {"a": 1}
    assert result["png_magic"] == "89504e470d0a1a0a"
    assert result["datasets"] == [["sample", "training"]]


def test_log_table_appends_and_loads(server: ServerProcess) -> None:
    # log_table lists the table's folder, and MLflow then searches the run's logged models: those endpoints
    # are the registry half of issue 13. Until this server has them the flow cannot run, and says why.
    probe = httpx.post(
        f"{server.uri}/api/2.0/mlflow/logged-models/search",
        json={"experiment_ids": ["0"]},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    if probe.status_code == 404 and probe.json().get("error_code") == "ENDPOINT_NOT_FOUND":
        pytest.skip("this server has no logged-models endpoints (the registry half of issue 13)")
    result = run_flow(server, "tables", needs=("pandas",))
    assert result["table_rows"] == 4
    assert result["logged_artifacts_tag"] == [{"path": "tables/sample.json", "type": "table"}]


def test_sklearn_autolog(server: ServerProcess) -> None:
    result = run_flow(server, "autolog", needs=("sklearn",))
    assert result["has_max_iter"] == "200"
    assert "training_accuracy_score" in result["metrics"]
    assert result["estimator_tag"] == "LogisticRegression"
    assert result["datasets"] == 1


def test_basic_auth_password_is_a_loopml_token(server: ServerProcess) -> None:
    assert run_flow(server, "credentials", MLFLOW_TRACKING_USERNAME="ann", MLFLOW_TRACKING_PASSWORD=ADMIN) == {
        "experiment": "credentials"
    }
    refused = run_flow(server, "credentials", MLFLOW_TRACKING_USERNAME="ann", MLFLOW_TRACKING_PASSWORD="lml_wrong")
    assert refused == {"error": "UNAUTHENTICATED"}
