"""The Feast side of benchmarks/features.py, run with .venv-anchors-features (Feast is never a dependency).

    python feast_features.py <scenario> <workdir> <offline: duckdb|file> [options as JSON]

Scenarios (wall time measured after the imports, printed as one JSON line):
- join: get_historical_features(labels, 10 features) over features.parquet; writes the result to
  <workdir>/feast-<offline>.parquet for the row-by-row comparison.
- materialize: materialize the view into Redis (a database of its own).
- online: p50/p99 of get_online_features for one entity over 5 views (SQLite or Redis online store).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

warnings.filterwarnings("ignore")

import pandas as pd  # noqa: E402
from feast import Entity, FeatureStore, FeatureView, Field, FileSource  # noqa: E402
from feast.repo_config import RepoConfig  # noqa: E402
from feast.types import Float64  # noqa: E402

FEATURES = [f"f{i}" for i in range(10)]


def make_store(
    scenario: str, workdir: Path, offline: str, online: dict[str, object], source: str, views: int, ttl_days: int
) -> tuple[FeatureStore, list[FeatureView]]:
    # A repository per scenario: a registry shared across scenarios would materialize the others' views too.
    repo = workdir / f"feast-{scenario}-{offline}-{online['type']}"
    repo.mkdir(exist_ok=True)
    config = RepoConfig(
        project="bench",
        registry=str(repo / "registry.db"),
        provider="local",
        offline_store={"type": offline},
        online_store=online,
        entity_key_serialization_version=3,
        repo_path=str(repo),
    )
    store = FeatureStore(config=config)
    entity = Entity(name="entity", join_keys=["entity_id"])
    file_source = FileSource(
        name="features", path=source, timestamp_field="event_timestamp", created_timestamp_column="created"
    )
    groups = [FEATURES] if views == 1 else [FEATURES[2 * i : 2 * i + 2] for i in range(views)]
    fvs = [
        FeatureView(
            name="fv" if views == 1 else f"fv{i}",
            entities=[entity],
            ttl=timedelta(days=ttl_days),
            schema=[Field(name=f, dtype=Float64) for f in group],
            source=file_source,
            online=True,
        )
        for i, group in enumerate(groups)
    ]
    store.apply([entity, *fvs])
    return store, fvs


def main() -> None:
    scenario, workdir, offline = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    options = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    ttl_days = int(options.get("ttl_days", 7))
    if scenario == "join":
        store, _ = make_store(
            scenario,
            workdir,
            offline,
            {"type": "sqlite", "path": str(workdir / "feast-online.db")},
            str(workdir / "features.parquet"),
            1,
            ttl_days,
        )
        labels = pd.read_parquet(workdir / "labels.parquet")
        started = time.perf_counter()
        cpu = time.process_time()
        result = store.get_historical_features(entity_df=labels, features=[f"fv:{f}" for f in FEATURES]).to_df()
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        result.to_parquet(workdir / f"feast-{offline}.parquet")
        print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "rows": len(result)}))
    elif scenario == "materialize":
        online = {"type": "redis", "connection_string": f"127.0.0.1:6379,db={options['redis_db']}"}
        store, _ = make_store(scenario, workdir, offline, online, str(workdir / "features.parquet"), 1, ttl_days)
        started = time.perf_counter()
        store.materialize(pd.Timestamp("2000-01-01", tz="UTC"), pd.Timestamp(options["end"], tz="UTC"))
        print(json.dumps({"seconds": time.perf_counter() - started}))
    elif scenario == "online":
        kind = options["online"]
        online = (
            {"type": "redis", "connection_string": f"127.0.0.1:6379,db={options['redis_db']}"}
            if kind == "redis"
            else {"type": "sqlite", "path": str(workdir / "feast-online-lookup.db")}
        )
        store, fvs = make_store(scenario, workdir, offline, online, str(workdir / "latest.parquet"), 5, 3650)
        store.materialize(pd.Timestamp("2000-01-01", tz="UTC"), pd.Timestamp(options["end"], tz="UTC"))
        refs = [f"fv{i}:f{2 * i + j}" for i in range(len(fvs)) for j in range(2)]
        rng = random.Random(7)
        entities = options["entities"]
        for _ in range(200):  # warm up
            store.get_online_features(features=refs, entity_rows=[{"entity_id": rng.randrange(entities)}]).to_dict()
        times, cpu = [], []
        for _ in range(int(options["lookups"])):
            entity = rng.randrange(entities)
            started, started_cpu = time.perf_counter(), time.thread_time()
            found = store.get_online_features(features=refs, entity_rows=[{"entity_id": entity}]).to_dict()
            times.append(time.perf_counter() - started)
            cpu.append(time.thread_time() - started_cpu)
        assert found["f0"][0] is not None
        times.sort()
        cpu.sort()
        p99 = int(len(times) * 0.99)
        print(
            json.dumps(
                {
                    "p50_ms": statistics.median(times) * 1e3,
                    "p99_ms": times[p99] * 1e3,
                    "cpu_p50_ms": statistics.median(cpu) * 1e3,
                    "cpu_p99_ms": cpu[p99] * 1e3,
                }
            )
        )
    else:
        raise SystemExit(f"unknown scenario {scenario}")


if __name__ == "__main__":
    main()
