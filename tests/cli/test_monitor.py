"""`loopml monitor create / run / windows / report / list / alerts` on the embedded store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

import loopml
from loopml.client.local_backend import LocalBackend
from loopml.data import build_profile
from loopml.monitoring import StoreSegmentPublisher
from loopml.serving.records import RequestRecord
from loopml.serving.request_log import RequestLog

from .conftest import Cli

DAY = 86_400_000
T0 = 19_700 * DAY
MANIFEST = b'{"flavor": "sklearn", "files": {}}'


def seed(cli: Cli, tmp_path: Path) -> None:
    """A version `bike/1` with a reference profile, and four days of traffic on `bike-demand`."""
    client = loopml.Client(home=cli.home)
    try:
        backend = client.backend
        assert isinstance(backend, LocalBackend)
        principal = backend.principal
        run = backend.tracking.create_run(principal, backend.tracking.get_or_create_experiment(principal, "e").id)
        backend.tracking.log_artifact(principal, run.id, "model/loopml-model.json", [MANIFEST])
        backend.registry.create_model(principal, "bike")
        digest = hashlib.sha256(MANIFEST).hexdigest()
        backend.registry.create_version(principal, "bike", run.id, "model", digest, "sklearn")
        rng = np.random.default_rng(0)
        temp = rng.normal(0.3, 0.1, 4000)
        client.monitors.set_reference_profile("bike", 1, build_profile(pd.DataFrame({"temp": temp})))
        publisher = StoreSegmentPublisher(backend.store, backend.artifacts)
        with RequestLog(tmp_path / "log", publisher=publisher, flush_ms=20) as log:
            for day, mean in enumerate((0.3, 0.3, 0.7, 0.7)):
                for i, value in enumerate(rng.normal(mean, 0.1, 200)):
                    log.append(
                        RequestRecord(
                            f"d{day}-{i}", T0 + day * DAY + i, "bike-demand", "bike", 1, "stable",
                            {"temp": [float(value)]}, [100.0], 2.0, 200, "native", None,
                        )
                    )  # fmt: skip
    finally:
        client.close()


def test_monitor_commands(cli: Cli, tmp_path: Path) -> None:
    seed(cli, tmp_path)
    created = cli("monitor", "create", "bike", "--deployment", "bike-demand", "--window", "1d", "--labels", "delay=2d")
    assert created.exit_code == 0, created.output
    assert "window 86400s" in created.output
    ran = cli("monitor", "run", "bike", "--json")
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.output)
    assert result["windows"] == 4 and len(result["opened"]) == 0  # two drifted days, k = 3
    again = cli("monitor", "run", "bike")
    assert again.exit_code == 0 and "0 new windows" in again.output and "0 requests pending" in again.output
    shown = cli("monitor", "windows", "bike", "--json")
    breaches = [w["breaches"]["drift"] for w in json.loads(shown.output)]
    assert breaches == [False, False, True, True]
    table = cli("monitor", "windows", "bike")
    assert table.exit_code == 0 and "BREACH" in table.output
    page = tmp_path / "report.html"
    reported = cli("monitor", "report", "bike", "--html", str(page))
    assert reported.exit_code == 0, reported.output
    assert "<svg" in page.read_text()
    listed = cli("monitor", "list")
    assert "bike-demand" in listed.output and "172800s" in listed.output
    assert cli("monitor", "alerts", "bike", "--json").output.strip() == "[]"


def test_bad_labels_option_is_a_usage_error(cli: Cli) -> None:
    result = cli("monitor", "create", "m", "--deployment", "d", "--labels", "lag=2d")
    assert result.exit_code == 2 and "delay=DURATION" in result.output


def test_positive_class_option(cli: Cli, tmp_path: Path) -> None:
    seed(cli, tmp_path)
    created = cli("monitor", "create", "m", "--deployment", "bike-demand", "--positive-class", "churned", "--json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["options"] == {"positive_class": "churned"}


def test_monitor_backfill_from_files(cli: Cli, tmp_path: Path) -> None:
    seed(cli, tmp_path)
    served = cli("monitor", "create", "live", "--deployment", "bike-demand", "--model", "bike", "--version", "1")
    assert served.exit_code == 0, served.output
    assert cli("monitor", "run", "live").exit_code == 0
    rng = np.random.default_rng(0)
    rng.normal(0.3, 0.1, 4000)  # the reference profile's draw in seed()
    days = [rng.normal(mean, 0.1, 200) for mean in (0.3, 0.3, 0.7, 0.7)]
    frame = pd.DataFrame(
        {
            "request_id": [f"d{day}-{i}" for day in range(4) for i in range(200)],
            "time_ms": [T0 + day * DAY + i for day in range(4) for i in range(200)],
            "temp": np.concatenate(days),
            "prediction": 100.0,
        }
    )
    frame.to_csv(tmp_path / "past.csv", index=False)
    created = cli("monitor", "create", "past", "--deployment", "bike-demand", "--model", "bike", "--version", "1")
    assert created.exit_code == 0, created.output
    filled = cli("monitor", "backfill", "past", "--requests", str(tmp_path / "past.csv"))
    assert filled.exit_code == 0, filled.output
    assert "4 windows backfilled" in filled.output
    shown = {
        name: [
            (w["rows"], w["breaches"]["drift"]) for w in json.loads(cli("monitor", "windows", name, "--json").output)
        ]
        for name in ("live", "past")
    }
    assert shown["past"] == shown["live"] == [(200, False), (200, False), (200, True), (200, True)]
    again = cli("monitor", "backfill", "past", "--requests", str(tmp_path / "past.csv"))
    assert again.exit_code != 0 and "already has windows" in again.output
    missing = cli("monitor", "backfill", "past", "--requests", str(tmp_path / "nope.parquet"))
    assert missing.exit_code != 0 and "no such file" in missing.output


def test_monitor_create_with_event_time_baselines_and_a_label_horizon(cli: Cli) -> None:
    created = cli(
        "monitor", "create", "m", "--deployment", "d", "--labels", "delay=1d,horizon=14d",
        "--time-field", "ts", "--baseline", "registration,replaced", "--json",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    options = json.loads(created.output)["options"]
    assert options == {"label_horizon": 14 * 86_400, "time_field": "ts", "baseline": ["registration", "replaced"]}
    bad = cli("monitor", "create", "n", "--deployment", "d", "--baseline", "yesterday")
    assert bad.exit_code != 0 and "baseline" in bad.output
