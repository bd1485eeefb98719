"""examples/ci/github-actions.yml cannot rot: every `run:` step of both jobs runs, in order, in bash, against a
real `loopml server`, as GitHub Actions would run it (the `uses:` steps are GitHub's checkout and Python)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sklearn.linear_model import LinearRegression
from tests.e2e.conftest import ADMIN, ServerProcess, free_port

import loopml

ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "examples" / "ci" / "github-actions.yml"
PR = "7"


def _expressions(server: ServerProcess, reports: Path) -> dict[str, str]:
    return {
        "secrets.LOOPML_TRACKING_URI": server.uri,
        "secrets.LOOPML_TOKEN": ADMIN,
        "github.event.pull_request.number": PR,
        "github.token": "test-token",
        "github.sha": "0123abc",
        "github.event_name": "pull_request",
    }


def _substitute(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        assert name in values, f"the template uses ${{{{ {name} }}}}, which this test does not know"
        return values[name]

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def _seed(server: ServerProcess) -> None:
    """What a team has before this workflow runs: a weak champion, deployed."""
    import pandas as pd

    hours = pd.read_csv(ROOT / "examples" / "data" / "bike_sharing" / "hour.csv")
    features = ["season", "hr", "holiday", "workingday", "weathersit", "temp", "atemp", "hum", "windspeed"]
    with loopml.Client(server.uri, token=ADMIN) as client:
        run = client.runs.create("bike-demand")
        model = LinearRegression().fit(hours[features][:500], hours["cnt"][:500])
        version = client.models.log(run.id, model, "bike-demand", input_example=hours[features][:5], register=True)
        client.models.set_alias("bike-demand", "champion", version.version)  # type: ignore[union-attr]
        client.gates.require("bike-demand", "champion")
        client.deployments.deploy("bike-demand", "bike-demand@champion")


@pytest.mark.slow
def test_every_run_step_of_the_ci_template_passes(tmp_path: Path) -> None:
    server = ServerProcess(
        home=tmp_path / "server", database_url=f"sqlite:///{tmp_path / 'server.db'}", port=free_port()
    )
    server.start()
    try:
        _seed(server)
        workdir = tmp_path / "checkout"
        workdir.mkdir()
        (workdir / "examples").symlink_to(ROOT / "examples")
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        comments = tmp_path / "comments"
        (bin_dir / "gh").write_text(
            f'#!/bin/sh\n# GitHub CLI stand-in: keeps the comment\necho "$@" > {comments}.args\ncat "$5" > {comments}\n'
        )
        (bin_dir / "gh").chmod(0o755)
        workflow = yaml.safe_load(TEMPLATE.read_text())
        values = _expressions(server, comments)
        for job in ("gate", "release"):
            env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
            env["PATH"] = f"{Path(sys.executable).parent}:{bin_dir}:{env['PATH']}"  # the venv's python and loopml
            env.update({k: _substitute(v, values) for k, v in workflow["env"].items()})
            env["LOOPML_HOME"] = str(tmp_path / "client")
            for step in workflow["jobs"][job]["steps"]:
                if "run" not in step:
                    assert step["uses"].startswith(("actions/checkout@", "actions/setup-python@"))
                    continue
                step_env = {**env, **{k: _substitute(str(v), values) for k, v in step.get("env", {}).items()}}
                done = subprocess.run(
                    ["bash", "-eo", "pipefail", "-c", _substitute(step["run"], values)],
                    cwd=workdir, env=step_env, capture_output=True, text=True, timeout=600,
                )  # fmt: skip
                assert done.returncode == 0, f"{job}: {step.get('name')}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        assert "### Gate passed: `bike-demand` version 2" in comments.read_text()
        assert comments.with_suffix(".args").read_text().split()[:3] == ["pr", "comment", PR]
        with loopml.Client(server.uri, token=ADMIN) as client:
            deployment = client.deployments.status("bike-demand")
            assert deployment.strategy == "canary"
            assert {(v.version, v.role) for v in deployment.versions} >= {(1, "stable"), (3, "canary")}
            assert [r.passed for r in client.gates.list("bike-demand")] == [True, True]
    finally:
        server.stop()
