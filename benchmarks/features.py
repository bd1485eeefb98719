"""Feature-store benchmark (issue 15): loopml against Feast, side by side in one run, on the same files.

    .venv/bin/python benchmarks/features.py           # 1,000,000 labels x 10,000,000 feature rows, 100,000 entities
    .venv/bin/python benchmarks/features.py --quick   # 100,000 x 1,000,000, 10,000 entities (a smoke run)

Feast runs with .venv-anchors-features (`make anchors-features`): installing it into .venv-anchors would
downgrade a package MLflow and Evidently use there.

Scenarios:
1. Point-in-time join: labels (entity_id, event_timestamp) against features.parquet (10 float features,
   event and created timestamps, TTL 7 days): loopml `training_set` against Feast's `get_historical_features`
   with its DuckDB offline store and with its file (Dask) offline store. Each side runs in its own process;
   wall and CPU time are measured inside it after the imports (reading the files included), peak RSS with
   `os.wait4`. The outputs are compared row by row (sorted by entity, time and values): the row counts, and
   every value equal (NaN = NaN). Label rows a side drops are reported.
2. Online lookup of 5 views (2 features each) for one entity, in-process: p50/p99 over 10,000 lookups of
   random entities, embedded SQLite and Redis, and Feast's `get_online_features` on its SQLite and Redis
   online stores. Wall time, and the thread's CPU time (which a busy shared machine inflates less).
3. Materialize features.parquet (the latest row of each of the entities) into Redis: loopml `materialize`
   against Feast's `materialize` (DuckDB offline store). Redis databases 12 (loopml) and 13 (Feast) must
   be empty at the start; they are emptied at the end.

Results: a table on stdout and benchmarks/results/features.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
ANCHOR_PYTHON = REPO / ".venv-anchors-features" / "bin" / "python"
ANCHOR_SCRIPT = HERE / "anchors" / "feast_features.py"
SEED = 20261205
FEATURES = [f"f{i}" for i in range(10)]
YEAR_SECONDS = 365 * 86400
START = "2012-01-01"
END = "2013-01-02"
TTL_DAYS = 7
LOOPML_REDIS_DB, FEAST_REDIS_DB = 12, 13
FILE_STORE_LIMIT_GB = 14
"""Address space allowed to Feast's file (Dask) store, which holds everything in pandas."""
TARGETS = {"join_vs_duckdb": 2.0, "join_vs_file": 10.0, "p99_sqlite_ms": 1.0, "p99_redis_ms": 2.0, "materialize": 5.0}


def make_data(directory: Path, labels: int, rows: int, entities: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    start = np.datetime64(START, "s")
    ts = start + rng.integers(0, YEAR_SECONDS, rows).astype("timedelta64[s]")
    frame = pd.DataFrame(
        {
            "entity_id": rng.integers(0, entities, rows, dtype=np.int64),
            "event_timestamp": pd.to_datetime(ts).tz_localize("UTC"),
            "created": pd.to_datetime(ts + rng.integers(0, 3600, rows).astype("timedelta64[s]")).tz_localize("UTC"),
        }
    )
    for name in FEATURES:
        frame[name] = rng.random(rows)
    frame.to_parquet(directory / "features.parquet", row_group_size=1_000_000)
    latest = frame.sort_values(["entity_id", "event_timestamp"]).drop_duplicates("entity_id", keep="last")
    latest.to_parquet(directory / "latest.parquet")
    label_ts = start + rng.integers(0, YEAR_SECONDS, labels).astype("timedelta64[s]")
    pd.DataFrame(
        {
            "entity_id": rng.integers(0, entities, labels, dtype=np.int64),
            "event_timestamp": pd.to_datetime(label_ts).tz_localize("UTC"),
        }
    ).to_parquet(directory / "labels.parquet")


DEFINITIONS = """
from loopml.features import Entity, FeatureView, Field, FileSource
entity = Entity("entity", join_keys=["entity_id"])
fv = FeatureView("fv", entities=[entity], ttl="{ttl}d",
                 source=FileSource("features.parquet", timestamp="event_timestamp", created="created"),
                 schema=[Field(f"f{{i}}", "float") for i in range(10)])
latest = FileSource("latest.parquet", timestamp="event_timestamp", created="created")
{views}
"""


def write_definitions(directory: Path) -> Path:
    views = "\n".join(
        f'fv{i} = FeatureView("fv{i}", entities=[entity], source=latest, '
        f'schema=[Field("f{2 * i}", "float"), Field("f{2 * i + 1}", "float")])'
        for i in range(5)
    )
    path = directory / "features.py"
    path.write_text(DEFINITIONS.format(ttl=TTL_DAYS, views=views))
    return path


def open_store(directory: Path, online: str) -> Any:
    from loopml.artifacts import open_artifact_store
    from loopml.features import FeatureStore, open_online_store
    from loopml.store import MetadataStore

    home = directory / "loopml"
    home.mkdir(exist_ok=True)
    return FeatureStore(
        MetadataStore.open(f"sqlite:///{home / 'loopml.db'}"),
        open_artifact_store((home / "artifacts").as_uri()),
        lambda: open_online_store(online, home),
        home / "cache",
    )


def principal() -> Any:
    from loopml.domain import Principal, Role

    return Principal("bench", Role.ADMIN, None)


# -- child processes ---------------------------------------------------------------------------------------


def child_join(directory: Path) -> None:
    import pyarrow.parquet as pq

    store = open_store(directory, "sqlite")
    store.apply(principal(), directory / "features.py")
    started, cpu = time.perf_counter(), time.process_time()
    labels = pq.read_table(directory / "labels.parquet")
    result = store.training_set(principal(), labels, [f"fv:{f}" for f in FEATURES])
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    result.to_parquet(directory / "loopml.parquet")
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "rows": len(result)}))


def run_measured(command: list[str], address_space_gb: float | None = None) -> dict[str, Any]:
    """Run one side in its own process: its JSON line, plus its own peak RSS (MB) from wait4. With
    `address_space_gb`, the child fails with a MemoryError rather than push a shared machine out of memory."""

    def limit() -> None:
        if address_space_gb is not None:
            import resource

            size = int(address_space_gb * 1024**3)
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit)
    assert process.stdout is not None
    assert process.stderr is not None
    stdout = process.stdout.read()
    stderr = process.stderr.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{stderr.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


# -- comparisons -------------------------------------------------------------------------------------------


def compare(ours: Path, theirs: Path, labels: int) -> dict[str, Any]:
    """Row counts, and whether every (entity, time, features) row is the same on both sides."""
    import numpy as np
    import pandas as pd

    columns = ["entity_id", "event_timestamp", *FEATURES]
    a = pd.read_parquet(ours, columns=columns)
    b = pd.read_parquet(theirs, columns=columns)
    for frame in (a, b):
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    order = ["entity_id", "event_timestamp", *FEATURES]
    a = a.sort_values(order, na_position="last").reset_index(drop=True)
    b = b.sort_values(order, na_position="last").reset_index(drop=True)
    same = len(a) == len(b)
    mismatched = None
    if same:
        keys_equal = (a["entity_id"].to_numpy() == b["entity_id"].to_numpy()).all() and (
            a["event_timestamp"].to_numpy() == b["event_timestamp"].to_numpy()
        ).all()
        values = np.array_equal(a[FEATURES].to_numpy(), b[FEATURES].to_numpy(), equal_nan=True)
        if not values:
            mismatched = int(
                (~np.isclose(a[FEATURES].to_numpy(), b[FEATURES].to_numpy(), equal_nan=True)).any(axis=1).sum()
            )
        same = bool(keys_equal and values)
    return {
        "rows_loopml": len(a),
        "rows_anchor": len(b),
        "label_rows": labels,
        "anchor_dropped_rows": labels - len(b),
        "rows_with_features_loopml": int(a["f0"].notna().sum()),
        "rows_with_features_anchor": int(b["f0"].notna().sum()),
        "identical": same,
        "mismatched_rows": mismatched,
    }


# -- scenarios ---------------------------------------------------------------------------------------------


def join_scenario(directory: Path, labels: int) -> dict[str, Any]:
    ours = run_measured([sys.executable, __file__, "--child", "join", str(directory)])
    out: dict[str, Any] = {"loopml": ours}
    for offline in ("duckdb", "file"):
        try:
            theirs = run_measured(
                [
                    str(ANCHOR_PYTHON),
                    str(ANCHOR_SCRIPT),
                    "join",
                    str(directory),
                    offline,
                    json.dumps({"ttl_days": TTL_DAYS}),
                ],
                address_space_gb=FILE_STORE_LIMIT_GB if offline == "file" else None,
            )
            theirs["comparison"] = compare(directory / "loopml.parquet", directory / f"feast-{offline}.parquet", labels)
            theirs["speedup"] = theirs["seconds"] / ours["seconds"]
        except RuntimeError as error:
            theirs = {"error": str(error)[-1500:]}
        out[f"feast_{offline}"] = theirs
    return out


def _redis(db: int) -> Any:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=db)
    if client.dbsize():
        raise SystemExit(f"Redis database {db} is not empty; the benchmark uses databases 12 and 13 alone")
    return client


def online_scenario(directory: Path, entities: int, lookups: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    refs = [f"fv{i}:f{2 * i + j}" for i in range(5) for j in range(2)]
    for kind in ("sqlite", "redis"):
        redis_client = _redis(LOOPML_REDIS_DB) if kind == "redis" else None
        setting = f"redis://127.0.0.1:6379/{LOOPML_REDIS_DB}" if kind == "redis" else "sqlite"
        home = directory / f"online-{kind}"
        home.mkdir(exist_ok=True)
        shutil.copy(directory / "features.py", home / "features.py")
        for name in ("latest.parquet", "features.parquet"):
            target = home / name
            if not target.exists():
                target.symlink_to(directory / name)
        store = open_store(home, setting)
        try:
            store.apply(principal(), home / "features.py")
            for i in range(5):
                store.materialize(principal(), f"fv{i}", END)
            rng = random.Random(7)
            for _ in range(200):
                store.online(principal(), refs, {"entity_id": [rng.randrange(entities)]})
            times, cpu = [], []
            for _ in range(lookups):
                entity = rng.randrange(entities)
                started, started_cpu = time.perf_counter(), time.thread_time()
                found = store.online(principal(), refs, {"entity_id": [entity]})
                times.append(time.perf_counter() - started)
                cpu.append(time.thread_time() - started_cpu)
            assert found.values["f0"][0] is not None
            times.sort()
            cpu.sort()
            p99 = int(lookups * 0.99)
            out[f"loopml_{kind}"] = {
                "p50_ms": statistics.median(times) * 1e3,
                "p99_ms": times[p99] * 1e3,
                "cpu_p50_ms": statistics.median(cpu) * 1e3,
                "cpu_p99_ms": cpu[p99] * 1e3,
            }
        finally:
            store.close()
            if redis_client is not None:
                redis_client.flushdb()
        feast_db = _redis(FEAST_REDIS_DB) if kind == "redis" else None
        try:
            options = {"online": kind, "redis_db": FEAST_REDIS_DB, "end": END, "entities": entities, "lookups": lookups}
            out[f"feast_{kind}"] = run_measured(
                [str(ANCHOR_PYTHON), str(ANCHOR_SCRIPT), "online", str(directory), "duckdb", json.dumps(options)]
            )
        except RuntimeError as error:
            out[f"feast_{kind}"] = {"error": str(error)[-1500:]}
        finally:
            if feast_db is not None:
                feast_db.flushdb()
    return out


def materialize_scenario(directory: Path, entities: int) -> dict[str, Any]:
    ours_redis = _redis(LOOPML_REDIS_DB)
    home = directory / "materialize"
    home.mkdir(exist_ok=True)
    shutil.copy(directory / "features.py", home / "features.py")
    for name in ("latest.parquet", "features.parquet"):
        (home / name).symlink_to(directory / name)
    store = open_store(home, f"redis://127.0.0.1:6379/{LOOPML_REDIS_DB}")
    try:
        store.apply(principal(), home / "features.py")
        started = time.perf_counter()
        job = store.materialize(principal(), "fv", END)
        ours = {"seconds": time.perf_counter() - started, "entities": job.rows}
        assert job.rows == entities, (job.rows, entities)
    finally:
        store.close()
        ours_redis.flushdb()
    feast_redis = _redis(FEAST_REDIS_DB)
    try:
        theirs = run_measured(
            [
                str(ANCHOR_PYTHON),
                str(ANCHOR_SCRIPT),
                "materialize",
                str(directory),
                "duckdb",
                json.dumps({"redis_db": FEAST_REDIS_DB, "end": END, "ttl_days": 3650}),
            ]
        )
        theirs["keys"] = feast_redis.dbsize()
        theirs["speedup"] = theirs["seconds"] / ours["seconds"]
    except RuntimeError as error:
        theirs = {"error": str(error)[-1500:]}
    finally:
        feast_redis.flushdb()
    return {"loopml": ours, "feast_duckdb": theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100k labels x 1M feature rows, 10k entities")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="+", choices=["join", "online", "materialize"], help="run these scenarios")
    args = parser.parse_args()
    if args.child:
        child_join(Path(args.child[1]))
        return
    if not ANCHOR_PYTHON.exists():
        raise SystemExit("Feast is not installed: make anchors-features")
    labels, rows, entities = (100_000, 1_000_000, 10_000) if args.quick else (1_000_000, 10_000_000, 100_000)
    lookups = 10_000 if not args.quick else 2_000
    report: dict[str, Any] = {
        "sizes": {"labels": labels, "feature_rows": rows, "entities": entities, "features": len(FEATURES)},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "targets": TARGETS,
    }
    with tempfile.TemporaryDirectory(prefix="loopml-features-bench-") as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        make_data(directory, labels, rows, entities)
        write_definitions(directory)
        took = time.perf_counter() - started
        print(f"data: {rows:,} feature rows, {labels:,} labels, {entities:,} entities ({took:.1f} s)")
        only = set(args.only or ["join", "online", "materialize"])
        if "join" in only:
            report["join"] = join_scenario(directory, labels)
        if "online" in only:
            report["online"] = online_scenario(directory, entities, lookups)
        if "materialize" in only:
            report["materialize"] = materialize_scenario(directory, entities)
    print_report(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "features.json").write_text(json.dumps(report, indent=2))


def print_report(report: dict[str, Any]) -> None:
    print(json.dumps(report, indent=2))
    join = report.get("join")
    if join:
        ours = join["loopml"]
        cost = f"{ours['cpu_seconds']:.1f} CPU-s, {ours['peak_rss_mb']:.0f} MB"
        print(f"\nPIT join: loopml {ours['seconds']:.2f} s ({cost})")
        for offline in ("duckdb", "file"):
            theirs = join[f"feast_{offline}"]
            if "error" in theirs:
                print(f"  Feast {offline}: failed")
                continue
            c = theirs["comparison"]
            print(
                f"  Feast {offline}: {theirs['seconds']:.2f} s ({theirs['cpu_seconds']:.1f} CPU-s, "
                f"{theirs['peak_rss_mb']:.0f} MB) -> loopml {theirs['speedup']:.1f}x faster; rows {c['rows_anchor']:,} "
                f"vs {c['rows_loopml']:,} (dropped {c['anchor_dropped_rows']:,}); identical: {c['identical']}"
            )
    online = report.get("online")
    if online:
        for key, value in online.items():
            if "error" not in value:
                p50, p99, cpu99 = value["p50_ms"], value["p99_ms"], value["cpu_p99_ms"]
                line = f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, CPU p99 {cpu99:.3f} ms"
                print(f"online lookup, 5 views, 1 entity, {key}: {line}")
    mat = report.get("materialize")
    if mat and "error" not in mat["feast_duckdb"]:
        print(
            f"materialize into Redis: loopml {mat['loopml']['seconds']:.2f} s, "
            f"Feast {mat['feast_duckdb']['seconds']:.2f} s "
            f"-> {mat['feast_duckdb']['speedup']:.1f}x"
        )


if __name__ == "__main__":
    main()
