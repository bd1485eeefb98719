"""What the REST API of the feature store refuses: on-demand views (user code) in the control plane, and
sources outside the directories and variables the server was told to read."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from loopml.artifacts import open_artifact_store
from loopml.governance import GovernanceService
from loopml.server import build_app
from loopml.settings import Settings
from loopml.store import MetadataStore
from loopml.tracking import TrackingService

ADMIN = "lml_feature_guard_admin_secret"
AUTH = {"Authorization": f"Bearer {ADMIN}"}

ODV = """def feels_warm(frame):
    return frame.assign(warm=frame["temp"] > 0.25)
"""


def _definitions(path: str, source: dict[str, object] | None = None) -> list[dict[str, object]]:
    view = {
        "entities": ["station"],
        "source": source or {"type": "file", "path": path, "timestamp": "ts", "created": None},
        "schema": [["temp", "float", None]],
        "ttl_seconds": None,
    }
    warmth = {
        "inputs": ["weather:temp"],
        "function": ODV,
        "function_name": "feels_warm",
        "schema": [["warm", "bool", None]],
    }
    return [
        {"kind": "entity", "name": "station", "spec": {"join_keys": ["station_id"]}},
        {"kind": "feature_view", "name": "weather", "spec": view},
        {"kind": "on_demand_view", "name": "warmth", "spec": warmth},
    ]


def test_the_server_runs_no_user_code_and_reads_only_its_source_directories(tmp_path: Path) -> None:
    allowed, elsewhere = tmp_path / "sources", tmp_path / "elsewhere"
    for directory in (allowed, elsewhere):
        directory.mkdir()
        frame = pd.DataFrame({"station_id": [1], "ts": pd.to_datetime(["2012-01-01"], utc=True), "temp": [0.3]})
        frame.to_parquet(directory / "weather.parquet")
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'loopml.db'}")
    governance = GovernanceService(store)
    governance.bootstrap_admin(ADMIN)
    settings = Settings(home=tmp_path / "home", features_source_dirs=str(allowed))
    app = build_app(TrackingService(store, open_artifact_store((tmp_path / "a").as_uri())), governance, settings)
    with TestClient(app) as http:

        def post(path: str, body: dict[str, object]) -> tuple[int, str]:
            answer = http.post(f"/api/v1{path}", json=body, headers=AUTH)
            return answer.status_code, answer.text

        status, text = post("/features/apply", {"definitions": _definitions(str(elsewhere / "weather.parquet"))})
        assert status == 200, text  # stored: the server does not read the source at apply
        status, text = post("/features/views/weather/materialize", {"end": "2013-01-01"})
        assert status == 400 and "outside the directories" in text
        post("/features/apply", {"definitions": _definitions(str(allowed / "weather.parquet"))})
        status, text = post("/features/views/weather/materialize", {"end": "2013-01-01"})
        assert status == 200, text
        status, text = post("/features/online", {"features": ["weather:temp"], "entities": {"station_id": [1]}})
        assert status == 200 and '"temp":[0.3]' in text
        status, text = post("/features/online", {"features": ["warmth:warm"], "entities": {"station_id": [1]}})
        assert status == 400 and "warmth" in text and "user code" in text
        sneaky = {"type": "postgres", "query": "SELECT 1", "timestamp": "ts", "created": None,
                  "url_env": "LOOPML_DATABASE_URL"}  # fmt: skip
        post("/features/apply", {"definitions": _definitions("", sneaky)})
        status, text = post("/features/views/weather/materialize", {"end": "2013-01-01", "start": "2012-01-01"})
        assert status == 400 and "LOOPML_FEATURES_" in text
        hostile = [{"kind": "feature_view", "name": "x", "spec": {"entities": "station", "ttl_seconds": 10**40}}]
        status, text = post("/features/apply", {"definitions": hostile})
        assert status == 400 and "problems" in text
    app.state.features.close()
    store.close()
