"""Deployment specs: parsing, the deployments file source (hot reload from a file), and the runner's config."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from loopml.errors import InvalidInput
from loopml.serving import DeploymentSpec, DirectorySpecSource, ModelHost, ServingVersion, create_serving_app
from loopml.serving.runner import CONFIG_ENV, ServeConfig, app_from_env
from loopml.serving.segments import read_segments
from loopml.serving.specs import parse_specs

from .support import Packages, wait_until


def write_specs(directory: Path, package: Path, number: int) -> None:
    data = {"deployments": [{"name": "bike", "revision": number, "versions": [
        {"model": "bike", "version": number, "package_dir": str(package)}
    ]}]}  # fmt: skip
    temporary = directory / "deployments.json.tmp"
    temporary.write_text(json.dumps(data))
    temporary.replace(directory / "deployments.json")  # atomic: a poll never reads half a file


def test_parse_specs_reads_the_file_format_and_names_bad_fields(tmp_path: Path) -> None:
    specs = parse_specs(
        {"deployments": [{"name": "a", "sticky_key": "user", "strategy": "canary", "versions": [
            {"model": "m", "version": 1, "package_dir": "pkg/v1", "weight": 90},
            {"model": "m", "version": 2, "package_dir": "/abs/v2", "weight": 10, "role": "canary"},
        ]}]},
        base=tmp_path,
    )  # fmt: skip
    spec = specs["a"]
    assert spec.versions[0].package_dir == tmp_path / "pkg/v1"
    assert spec.versions[1].package_dir == Path("/abs/v2")
    assert [v.label for v in spec.live] == ["m/1", "m/2"]
    assert spec.sticky_key == "user"
    with pytest.raises(InvalidInput, match="weight"):
        parse_specs({"deployments": [{"name": "a", "versions": [
            {"model": "m", "version": 1, "package_dir": "p", "weight": "lots"}]}]})  # fmt: skip
    with pytest.raises(InvalidInput, match="unknown field 'wieght'"):
        parse_specs({"deployments": [{"name": "a", "versions": [
            {"model": "m", "version": 1, "package_dir": "p", "wieght": 1}]}]})  # fmt: skip
    with pytest.raises(InvalidInput, match="non-shadow"):
        DeploymentSpec("a", (ServingVersion("m", 1, Path("p"), role="shadow"),))
    with pytest.raises(InvalidInput, match="listed twice"):
        DeploymentSpec("a", (ServingVersion("m", 1, Path("p")), ServingVersion("m", 1, Path("q"))))


def test_strategies_are_named_as_loopml_deploy_names_them_and_old_files_still_read() -> None:
    def strategy(**fields: object) -> str:
        item = {"name": "a", "versions": [{"model": "m", "version": 1, "package_dir": "p"}], **fields}
        return parse_specs({"deployments": [item]})["a"].strategy

    assert strategy() == "direct"
    assert strategy(strategy="single") == "direct"  # what older deployments files say
    assert strategy(strategy="ab") == "ab"
    with pytest.raises(InvalidInput, match="'direct', 'canary', 'ab', 'shadow'"):
        strategy(strategy="blue-green")


def test_directory_source_hot_reloads_when_the_file_changes(packages: Packages, tmp_path: Path) -> None:
    write_specs(tmp_path, packages.v1, 1)
    host = ModelHost(DirectorySpecSource(tmp_path), poll_seconds=0.02)
    app = create_serving_app(host)
    with TestClient(app) as client:
        body = {"records": packages.records(1)}
        assert client.post("/v1/deployments/bike/predict", json=body).headers["x-loopml-model-version"] == "bike/1"
        (tmp_path / "deployments.json").write_text("{not json")  # a broken file: keep serving what is loaded
        time.sleep(0.1)
        assert client.post("/v1/deployments/bike/predict", json=body).status_code == 200
        write_specs(tmp_path, packages.v2, 2)
        wait_until(lambda: host.routes["bike"].live[0].version.version == 2)
        response = client.post("/v1/deployments/bike/predict", json=body)
        assert response.headers["x-loopml-model-version"] == "bike/2"
        assert response.json()["predictions"] == packages.expected(2, body["records"])


def test_config_round_trips_through_the_worker_environment(packages: Packages, monkeypatch: pytest.MonkeyPatch) -> None:
    config = ServeConfig(model_dir=str(packages.v1), name="rides", max_batch_size=8, batching=False)
    assert ServeConfig.from_json(config.to_json()) == config
    monkeypatch.setenv(CONFIG_ENV, config.to_json())
    app = app_from_env()
    with TestClient(app) as client:
        response = client.post("/v1/deployments/rides/predict", json={"records": packages.records(1)})
        assert response.status_code == 200
        assert response.headers["x-loopml-model-version"] == "rides/1"
    with pytest.raises(InvalidInput, match="one model directory"):
        ServeConfig()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_loopml_serve_command_serves_a_model_directory_and_logs_its_answers(packages: Packages, tmp_path: Path) -> None:
    port = free_port()
    log_dir = tmp_path / "request-log"
    arguments = ["serve", "--model-dir", str(packages.v1), "--name", "bike", "--port", str(port), "--max-wait-ms", "1",
                 "--request-log", str(log_dir)]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-c", "from loopml.cli import main; main()", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                return httpx.get(f"{url}/ping").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=60)
        records = packages.records(2)
        response = httpx.post(f"{url}/invocations", json={"dataframe_split": {
            "columns": list(records[0]), "data": [list(r.values()) for r in records]}})  # fmt: skip
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": packages.expected(1, records)}
        assert "loopml_requests_total" in httpx.get(f"{url}/metrics").text
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    # a clean stop seals the open segment: the answer is in the log, with the id the response carried
    logged = read_segments(log_dir / "sealed")
    assert logged.column("request_id").to_pylist() == [response.headers["x-request-id"]], output
    assert json.loads(logged.column("outputs")[0].as_py()) == packages.expected(1, records)
