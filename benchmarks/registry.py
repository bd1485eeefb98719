"""Registry benchmark (issue 3): loopml against MLflow, side by side in one run, on the same model.

    .venv/bin/python benchmarks/registry.py            # full run, a few minutes
    .venv/bin/python benchmarks/registry.py --quick    # smoke run: small model, 1 timed rep, short timeit

Scenarios (see benchmarks/README.md for what each side does):
1. log_model + register a ~10 MB scikit-learn RandomForestRegressor (Bike Sharing) to a server:
   loopml `run.log_model(..., register=True)` -> `loopml server` against
   `mlflow.sklearn.log_model(..., registered_model_name=...)` -> `mlflow server --serve-artifacts`,
   each with one worker process; the same pickled model object on both sides; median of N calls.
2. Fresh process: `python -c` that imports the library, loads `models:/bike-demand@champion` from the
   server (empty cache) and predicts one row; the whole subprocess's wall time and the load+predict time
   the child measures itself; median of N.
3. Signature enforcement on a 1-row predict (DataFrame, numpy array, record dict): loopml
   `predict` minus `predict_raw` (MLflow: pyfunc `predict` minus the sklearn model's own `predict`), min of
   `--repeat` timeit runs, in microseconds.

The MLflow side runs in `.venv-anchors` (benchmarks/anchors/mlflow_registry.py, one JSON line per call).
Results: a table on stdout and benchmarks/results/registry.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

from _common import (
    BIKE_CSV,
    BIKE_FEATURES,
    BIKE_TARGET,
    REGISTRY_ALIAS,
    REGISTRY_DEPTH,
    REGISTRY_MODEL,
    REGISTRY_TREES,
    SEED,
    bike_row,
    free_port,
    run_anchor,
    server,
    summarize,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
CSV = REPO / BIKE_CSV
ANCHOR_PYTHON = REPO / ".venv-anchors" / "bin" / "python"
ANCHOR_SCRIPT = HERE / "anchors" / "mlflow_registry.py"
MLFLOW = REPO / ".venv-anchors" / "bin" / "mlflow"
LOOPML = Path(sys.executable).parent / "loopml"
TOKEN = "bench-admin-token-not-a-secret-0123456789"
REFERENCE = f"models:/{REGISTRY_MODEL}@{REGISTRY_ALIAS}"

TARGETS = {"log_vs_mlflow": 3.0, "load_vs_mlflow": 3.0, "enforce_us": 50.0}

# The fresh-process children: the same shape on both sides. Imports, then the 1-row DataFrame (built
# before the clock), then load + first predict; the child prints its own timings as one JSON line.
LOOPML_CHILD = """\
import time
started = time.perf_counter()
import loopml as lm
import pandas as pd
imported = time.perf_counter()
X1 = pd.DataFrame([ROW])
t0 = time.perf_counter()
lm.set_tracking_uri(URI, token=TOKEN)
model = lm.models.load(REFERENCE)
t1 = time.perf_counter()
y = model.predict(X1)
t2 = time.perf_counter()
import json
print(json.dumps({"import_s": imported - started, "load_s": t1 - t0, "predict_s": t2 - t1,
                  "load_predict_s": t2 - t0, "prediction": float(y[0])}))
"""
MLFLOW_CHILD = """\
import time
started = time.perf_counter()
import mlflow
import pandas as pd
imported = time.perf_counter()
X1 = pd.DataFrame([ROW])
t0 = time.perf_counter()
mlflow.set_tracking_uri(URI)
model = mlflow.pyfunc.load_model(REFERENCE)
t1 = time.perf_counter()
y = model.predict(X1)
t2 = time.perf_counter()
import json
print(json.dumps({"import_s": imported - started, "load_s": t1 - t0, "predict_s": t2 - t1,
                  "load_predict_s": t2 - t0, "prediction": float(y[0])}))
"""


# -- processes ---------------------------------------------------------------------------------------


def anchor(*args: str) -> dict[str, Any]:
    """Run one MLflow subcommand in the anchor venv; its last stdout line is the JSON result."""
    return run_anchor(ANCHOR_PYTHON, ANCHOR_SCRIPT, *args)


def fresh_child(python: Path, code: str, home: Path) -> dict[str, Any]:
    """Run `python -c code` in a new process in `home`; its wall time (start to exit) plus what it printed.

    `home` is empty: it is the child's LOOPML_HOME (so the package really comes from the server, not a
    cache) and TMPDIR (MLflow downloads into a fresh temporary directory on every load_model anyway)."""
    env = {**os.environ, "LOOPML_HOME": str(home), "TMPDIR": str(home)}
    started = time.perf_counter()
    done = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True, check=False, cwd=home)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"a fresh-process load failed ({python}):\n{done.stderr[-3000:]}")
    return {"wall_s": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def _child_code(template: str, uri: str) -> str:
    values = {"ROW": repr(bike_row(str(CSV))), "URI": repr(uri), "TOKEN": repr(TOKEN), "REFERENCE": repr(REFERENCE)}
    head = "".join(f"{name} = {value}\n" for name, value in values.items())
    return head + template


# -- the model ---------------------------------------------------------------------------------------


def train(out: Path, trees: int, depth: int) -> dict[str, Any]:
    """Train the forest once and save it with joblib; both sides load this file before their clocks."""
    import joblib
    import pandas as pd
    from sklearn.ensemble import RandomForestRegressor

    frame = pd.read_csv(CSV)
    started = time.perf_counter()
    model = RandomForestRegressor(n_estimators=trees, max_depth=depth, random_state=SEED % 2**32, n_jobs=1)
    model.fit(frame[BIKE_FEATURES], frame[BIKE_TARGET])
    fit_seconds = time.perf_counter() - started
    joblib.dump(model, out)
    return {"path": str(out), "bytes": out.stat().st_size, "fit_seconds": fit_seconds, "trees": trees, "depth": depth}


def _versions() -> dict[str, str]:
    import joblib
    import numpy
    import pandas
    import sklearn

    return {
        "sklearn": sklearn.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "joblib": joblib.__version__,
    }


def _largest_file(root: Path, suffixes: tuple[str, ...]) -> dict[str, Any] | None:
    """The biggest stored model file under `root` (what the server keeps for one version)."""
    found = [p for p in root.rglob("*") if p.is_file() and p.name.endswith(suffixes)]
    if not found:
        return None
    biggest = max(found, key=lambda p: p.stat().st_size)
    return {"name": biggest.name, "bytes": biggest.stat().st_size, "files": len(found)}


# -- loopml side -------------------------------------------------------------------------------------


def log_loopml(model_path: Path, reps: int, warmups: int) -> dict[str, Any]:
    """`run.log_model(..., register=True)` per run; the clock covers the call only."""
    import joblib
    import pandas as pd

    import loopml as lm

    model = joblib.load(model_path)
    example = pd.read_csv(CSV)[BIKE_FEATURES].iloc[:5]
    timings, warmup_timings, versions = [], [], []
    for index in range(warmups + reps):
        with lm.start_run(experiment="registry") as run:  # run start and end are outside the clock
            started = time.perf_counter()
            version = run.log_model(model, name=REGISTRY_MODEL, input_example=example, register=True)
            seconds = time.perf_counter() - started
        versions.append(version.version)
        (timings if index >= warmups else warmup_timings).append(seconds)
    lm.models.set_alias(REGISTRY_MODEL, REGISTRY_ALIAS, versions[-1], reason="benchmark")
    return {
        "timings_s": timings,
        "warmup_timings_s": warmup_timings,
        "versions": versions,
        "alias_version": versions[-1],
    }


def overhead_loopml(number: int, repeat: int) -> dict[str, Any]:
    """`predict` minus `predict_raw` on one row, min over `repeat` timeit runs of `number` calls each.

    For the record dict the baseline is `predict_raw` on the 1-row numpy array `predict` turns it into
    (`predict_raw` takes what the model takes; a bare dict is not that)."""
    import numpy as np
    import pandas as pd

    import loopml as lm

    model = lm.models.load(REFERENCE)
    row = bike_row(str(CSV))
    frame = pd.DataFrame([row])
    array = frame.to_numpy()
    signature = model.signature
    assert signature is not None
    enforced_record = signature.enforce(row)
    assert isinstance(enforced_record, np.ndarray), type(enforced_record)
    cases = {"dataframe": (frame, frame), "numpy": (array, array), "record": (row, enforced_record)}
    result: dict[str, Any] = {}
    for kind, (data, raw_data) in cases.items():
        checked = model.predict(data)
        plain = model.predict_raw(raw_data)
        assert np.allclose(checked, plain), (kind, checked, plain)
        timer_checked = timeit.Timer(lambda d=data: model.predict(d))  # type: ignore[misc]
        timer_plain = timeit.Timer(lambda d=raw_data: model.predict_raw(d))  # type: ignore[misc]
        timer_enforce = timeit.Timer(lambda d=data: signature.enforce(d))  # type: ignore[misc]
        with_checks, without = [], []
        for _ in range(repeat):  # interleaved, so noise hits both alike
            with_checks.append(timer_checked.timeit(number) / number)
            without.append(timer_plain.timeit(number) / number)
        enforce_only = min(timer_enforce.repeat(repeat, number * 10)) / (number * 10)
        result[kind] = {
            "predict_us": min(with_checks) * 1e6,
            "raw_us": min(without) * 1e6,
            "overhead_us": (min(with_checks) - min(without)) * 1e6,
            "enforce_only_us": enforce_only * 1e6,
        }
    return result


# -- report ------------------------------------------------------------------------------------------


def rows(loopml: dict[str, Any], mlflow: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]]:
    """The table. The enforcement rows are differences of two ~ms predicts, so on a noisy machine they can
    come out a few tens of µs off either way; the last row times `Signature.enforce` itself."""
    size_mb = config["model_bytes"] / 1e6
    log_l, log_m = loopml["log"]["median_s"], mlflow["log"]["median_s"]
    found = [
        {
            "scenario": f"log_model + register, {size_mb:.1f} MB RandomForest, to a server (median, s)",
            "loopml": log_l,
            "mlflow": log_m,
            "ratio": log_m / log_l,
            "target": f">= {TARGETS['log_vs_mlflow']:.0f}x",
            "pass": log_m / log_l >= TARGETS["log_vs_mlflow"],
        }
    ]
    for stat, label in (
        ("wall_s", "fresh process: imports + load @alias + first 1-row predict (median, s)"),
        ("load_predict_s", "  of which load + first predict in the child (median, s)"),
        ("import_s", "  of which imports (median, s)"),
    ):
        value_l, value_m = loopml["load"][stat]["median_s"], mlflow["load"][stat]["median_s"]
        found.append(
            {
                "scenario": label,
                "loopml": value_l,
                "mlflow": value_m,
                "ratio": value_m / value_l,
                "target": f">= {TARGETS['load_vs_mlflow']:.0f}x" if stat != "import_s" else "(reported)",
                "pass": value_m / value_l >= TARGETS["load_vs_mlflow"] if stat != "import_s" else None,
            }
        )
    for kind in ("dataframe", "numpy", "record"):
        mine, theirs = loopml["overhead"][kind], mlflow["overhead"].get(kind, {})
        their_us = theirs.get("overhead_us")
        found.append(
            {
                "scenario": f"signature enforcement, 1-row {kind}: predict - predict_raw (µs)",
                "loopml": mine["overhead_us"],
                "mlflow": "refused" if "error" in theirs else their_us,
                "ratio": their_us / mine["overhead_us"] if their_us and mine["overhead_us"] > 0 else None,
                "target": f"<= {TARGETS['enforce_us']:.0f} µs",
                "pass": mine["overhead_us"] <= TARGETS["enforce_us"],
            }
        )
    alone = [loopml["overhead"][kind]["enforce_only_us"] for kind in ("dataframe", "numpy", "record")]
    found.append(
        {
            "scenario": "Signature.enforce alone, 1-row dataframe / numpy / record (µs)",
            "loopml": " / ".join(f"{us:.1f}" for us in alone),
            "mlflow": None,
            "ratio": None,
            "target": f"<= {TARGETS['enforce_us']:.0f} µs",
            "pass": max(alone) <= TARGETS["enforce_us"],
        }
    )
    return found


def _number(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def table(found: list[dict[str, Any]]) -> str:
    lines = ["| scenario | loopml | MLflow | ratio | target | result |", "| --- | ---: | ---: | ---: | --- | --- |"]
    for row in found:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:,.1f}x"
        verdict = {True: "pass", False: "FAIL", None: "-"}[row["pass"]]
        lines.append(
            f"| {row['scenario']} | {_number(row['loopml'])} | {_number(row['mlflow'])} | {ratio} "
            f"| {row['target']} | {verdict} |"
        )
    return "\n".join(lines)


def _seconds(timings: list[float]) -> dict[str, Any]:
    return {"timings_s": timings, "median_s": statistics.median(timings), **summarize(timings)}


# -- main --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="timed log_model calls and fresh loads per side (3)")
    parser.add_argument("--warmups", type=int, default=1, help="untimed log_model calls / loads first (1)")
    parser.add_argument("--trees", type=int, default=REGISTRY_TREES, help="n_estimators (32: about 10 MB)")
    parser.add_argument("--depth", type=int, default=REGISTRY_DEPTH, help="max_depth (12)")
    parser.add_argument("--number", type=int, default=200, help="predict calls per timeit run (200)")
    parser.add_argument("--repeat", type=int, default=5, help="timeit runs, the min is kept (5)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 trees, 1 timed rep, no warm-up")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores and server logs")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.warmups, args.trees, args.number, args.repeat = 1, 0, 4, 20, 2
    for needed in (ANCHOR_PYTHON, MLFLOW, LOOPML, CSV):
        if not needed.exists():
            print(f"missing {needed}: run `make install` and `make anchors` first", file=sys.stderr)
            return 2

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tmp").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="registry-", dir=RESULTS / "tmp"))
    config: dict[str, Any] = {k: v for k, v in vars(args).items() if k != "keep"}
    print(f"registry benchmark: {config}; work dir {work}", flush=True)
    try:
        loopml, mlflow = run(args, work, config)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    found = rows(loopml, mlflow, config)
    report = {
        "benchmark": "registry",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "config": config,
        "loopml": loopml,
        "mlflow": mlflow,
        "rows": found,
    }
    (RESULTS / "registry.json").write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(found))
    checks = {
        "both sides predict the same value": loopml["load"]["same_prediction"],
        "every fresh load downloaded": loopml["load"]["downloaded_every_time"],
    }
    print()
    stored = (loopml.get("stored_model_file") or {}).get("bytes"), (mlflow.get("stored_model_file") or {}).get("bytes")
    print(
        f"model: {config['model_bytes'] / 1e6:.1f} MB pickled (joblib); stored as skops: loopml "
        f"{(stored[0] or 0) / 1e6:.1f} MB, MLflow {(stored[1] or 0) / 1e6:.1f} MB"
    )
    print("checks: " + ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in checks.items()))
    print(f"results: {RESULTS / 'registry.json'}")
    return 0 if all(checks.values()) else 1


def run(args: argparse.Namespace, work: Path, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    loopml_home, mlflow_dir, client_home = work / "loopml-home", work / "mlflow", work / "client-home"
    mlflow_dir.mkdir()
    # This process's own loopml home (its model cache), set before loopml reads its settings.
    os.environ["LOOPML_HOME"] = str(client_home)
    import loopml as lm

    loopml: dict[str, Any] = {}
    mlflow: dict[str, Any] = {}

    # The model: trained once here and pickled; both sides unpickle the same file. If the anchor venv has
    # another scikit-learn, it trains its own with the same data, params and seed instead.
    ours, theirs = _versions(), anchor("versions")
    config["versions"] = {"loopml_venv": ours, "anchor_venv": {k: theirs[k] for k in ours}}
    model_file = work / "model.joblib"
    config["model"] = train(model_file, args.trees, args.depth)
    config["model_bytes"] = config["model"]["bytes"]
    anchor_model = model_file
    if theirs["sklearn"] != ours["sklearn"]:
        anchor_model = work / "model-anchor.joblib"
        config["anchor_model"] = anchor(
            "train",
            "--csv",
            str(CSV),
            "--out",
            str(anchor_model),
            "--trees",
            str(args.trees),
            "--depth",
            str(args.depth),
        )
        print(f"  scikit-learn differs ({ours['sklearn']} vs {theirs['sklearn']}): trained in each venv", flush=True)
    print(f"  model: {args.trees} trees, depth {args.depth}, {config['model_bytes'] / 1e6:.1f} MB pickled", flush=True)

    loopml_port, mlflow_port = free_port(), free_port()
    loopml_uri, mlflow_uri = f"http://127.0.0.1:{loopml_port}", f"http://127.0.0.1:{mlflow_port}"
    loopml_cmd = [str(LOOPML), "server", "--host", "127.0.0.1", "--port", str(loopml_port)]
    mlflow_cmd = [
        str(MLFLOW),
        "server",
        "--backend-store-uri",
        f"sqlite:///{mlflow_dir / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        (mlflow_dir / "artifacts").as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(mlflow_port),
        "--workers",
        "1",
    ]
    loopml_env = {"LOOPML_HOME": str(loopml_home), "LOOPML_ADMIN_TOKEN": TOKEN}
    with (
        server("loopml server", loopml_cmd, f"{loopml_uri}/api/v1/health", loopml_env, work / "loopml.log") as lt,
        server("mlflow server", mlflow_cmd, f"{mlflow_uri}/health", {}, work / "mlflow.log") as mt,
    ):
        loopml["server"] = {"command": loopml_cmd[1:], "workers": 1, "ready_seconds": lt}
        mlflow["server"] = {"command": mlflow_cmd[1:], "workers": 1, "ready_seconds": mt}

        print(f"1. log_model + register, {args.warmups} warm-up + {args.reps} timed per side ...", flush=True)
        lm.set_tracking_uri(loopml_uri, token=TOKEN)
        logged = log_loopml(model_file, args.reps, args.warmups)
        loopml["log"] = {**logged, **_seconds(logged["timings_s"])}
        logged = anchor(
            "log",
            "--uri",
            mlflow_uri,
            "--model",
            str(anchor_model),
            "--csv",
            str(CSV),
            "--reps",
            str(args.reps),
            "--warmups",
            str(args.warmups),
        )
        mlflow["log"] = {**logged, **_seconds(logged["timings_s"])}
        mlflow["stored_model_file"] = _largest_file(mlflow_dir / "artifacts", (".skops", ".pkl", ".joblib"))

        print(f"2. fresh-process load + predict, {args.warmups} warm-up + {args.reps} timed per side ...", flush=True)
        codes = {
            "loopml": (Path(sys.executable), _child_code(LOOPML_CHILD, loopml_uri)),
            "mlflow": (ANCHOR_PYTHON, _child_code(MLFLOW_CHILD, mlflow_uri)),
        }
        children: dict[str, list[dict[str, Any]]] = {"loopml": [], "mlflow": []}
        homes = []
        for index in range(args.warmups + args.reps):
            for side, (python, code) in codes.items():  # interleaved: noise hits both sides alike
                home = work / f"load-home-{side}-{index}"
                home.mkdir()
                if side == "loopml":
                    homes.append(home)
                result = fresh_child(python, code, home)
                if index >= args.warmups:
                    children[side].append(result)
        predictions = {side: {r["prediction"] for r in results} for side, results in children.items()}
        same = len(predictions["loopml"] | predictions["mlflow"]) == 1 or all(
            abs(a - b) <= 1e-9 * max(1.0, abs(a)) for a in predictions["loopml"] for b in predictions["mlflow"]
        )
        # loopml's store keeps blobs by digest, without names: measure the package a child downloaded
        loopml["stored_model_file"] = _largest_file(homes[0], (".skops", ".pkl", ".joblib"))
        downloaded = all(any((h / "cache" / "models").glob("*")) for h in homes)
        for side, target in (("loopml", loopml), ("mlflow", mlflow)):
            target["load"] = {
                stat: _seconds([r[stat] for r in children[side]])
                for stat in ("wall_s", "import_s", "load_s", "predict_s", "load_predict_s")
            }
            target["load"]["children"] = children[side]
        loopml["load"]["same_prediction"] = same
        loopml["load"]["downloaded_every_time"] = downloaded
        loopml["load"]["predictions"] = sorted(predictions["loopml"] | predictions["mlflow"])

        print(f"3. signature enforcement, {args.repeat} x {args.number} calls per input kind ...", flush=True)
        loopml["overhead"] = overhead_loopml(args.number, args.repeat)
        mlflow["overhead"] = anchor(
            "overhead",
            "--uri",
            mlflow_uri,
            "--csv",
            str(CSV),
            "--number",
            str(args.number),
            "--repeat",
            str(args.repeat),
        )
        lm.set_tracking_uri(None)
    return loopml, mlflow


if __name__ == "__main__":
    sys.exit(main())
