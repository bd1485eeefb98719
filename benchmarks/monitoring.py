"""Monitoring benchmark (issues 5 and 10): loopml profiles + drift against Evidently, side by side, as a curve.

    .venv/bin/python benchmarks/monitoring.py            # reference 1M rows; windows of 1e4, 1e5, 1e6 rows
    .venv/bin/python benchmarks/monitoring.py --quick    # reference 100k rows; windows of 1e3, 1e4, 1e5 rows
    .venv/bin/python benchmarks/monitoring.py --sizes 1e4,1e5 --rows 200000

Data: 20 numeric + 5 categorical columns, seeded; the current data has three numeric columns shifted.
Scenarios:
1. Windows against a stored profile, at each size N of `--sizes`: loopml loads the reference profile (JSON,
   built once from the reference) and computes drift on an N-row window (in memory), median of 3; Evidently
   runs `Report([DataDriftPreset()]).run(window, reference)` on the same window and the raw reference (it
   keeps no reusable reference summary), in a fresh process per size. Both clocks exclude file reads.
2. Reference vs current of `--rows` each, read from the same Parquet files: loopml `build_profile(reference)`
   + `dataset_drift(profile, current)` against Evidently's run at the largest window when it is the whole
   current set (else a run of its own); wall time from after the imports to the result (reading the files
   included), peak RSS per process from `os.wait4`.
3. Inline contract validation of a 1-row request: `compile_row_validator(infer_contract(profile))`,
   median over repeats of 10,000 calls.

Results: a table on stdout, benchmarks/results/monitoring.json, and the curve as SVG in docs/benchmarks/.
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
from pathlib import Path
from typing import Any

from _common import parse_sizes
from _plot import line_plot

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
ANCHOR_PYTHON = REPO / ".venv-anchors" / "bin" / "python"
ANCHOR_SCRIPT = HERE / "anchors" / "evidently_drift.py"
SEED = 20261126
NUMERIC = 20
CATEGORICAL = 5
SHIFTED = ("n0", "n7", "n14")
"""Columns whose mean moves by 0.5 std in the current data (the rest are drawn like the reference)."""

TARGETS = {"speedup": 30.0, "memory_ratio": 0.5, "window_s": 0.5, "row_us": 50.0, "window_speedup": 100.0}
WINDOW_TARGET_ROWS = 1_000_000
"""The window size the 100x target is for."""
SIZES = "1e4,1e5,1e6"
PLOTS = REPO / "docs" / "benchmarks"


def make_data(rows: int, directory: Path, sizes: list[int]) -> tuple[Path, Path, dict[int, Path]]:
    """Seeded reference and current Parquet files of `rows` rows, and one window file per size (the first
    rows of the current data)."""
    import numpy as np
    import pandas as pd

    def frame(seed: int, shift: bool) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        columns: dict[str, Any] = {}
        for i in range(NUMERIC):
            kind = i % 4
            if kind == 0:
                values = rng.normal(10.0 * i, 1.0 + i, rows)
                std = 1.0 + i
            elif kind == 1:
                values = rng.lognormal(0.0, 0.75, rows)
                std = float(np.sqrt((np.exp(0.75**2) - 1) * np.exp(0.75**2)))
            elif kind == 2:
                values = rng.gamma(2.0 + i, 1.0, rows)
                std = float(np.sqrt(2.0 + i))
            else:
                values = rng.uniform(-1.0, 1.0, rows)
                std = float(2 / np.sqrt(12))
            if shift and f"n{i}" in SHIFTED:
                values = values + 0.5 * std
            columns[f"n{i}"] = values
        for j in range(CATEGORICAL):
            levels = [f"level-{m}" for m in range(4 + 6 * j)]
            weights = np.random.default_rng(j).dirichlet(np.ones(len(levels)))  # same weights on both sides
            columns[f"c{j}"] = rng.choice(levels, size=rows, p=weights)
        return pd.DataFrame(columns)

    directory.mkdir(parents=True, exist_ok=True)
    reference, current = directory / "reference.parquet", directory / "current.parquet"
    frame(SEED, shift=False).to_parquet(reference, index=False)
    current_frame = frame(SEED + 1, shift=True)
    current_frame.to_parquet(current, index=False)
    windows = {}
    for size in sizes:
        windows[size] = directory / f"window-{size}.parquet"
        current_frame.iloc[:size].to_parquet(windows[size], index=False)
    return reference, current, windows


# --- the loopml side (run as a subprocess of this same script) ---------------------------------------


def loopml_side(reference: str, current: str, profile_path: str, windows: str) -> dict[str, Any]:
    started = time.perf_counter()
    import timeit

    import pandas as pd

    from loopml.data import Profile, build_profile, compile_row_validator, infer_contract
    from loopml.monitoring import dataset_drift

    imported = time.perf_counter()
    profile = build_profile(reference)
    profiled = time.perf_counter()
    report = dataset_drift(profile, current)
    done = time.perf_counter()
    Path(profile_path).write_text(profile.to_json())

    curve = []
    for size, path in sorted((int(size), path) for size, path in json.loads(windows).items()):
        window_frame = pd.read_parquet(path)
        window_times = []
        for _ in range(3):
            t0 = time.perf_counter()
            stored = Profile.from_json(Path(profile_path).read_text())
            window_report = dataset_drift(stored, window_frame)
            window_times.append(time.perf_counter() - t0)
        curve.append(
            {
                "rows": size,
                "seconds": statistics.median(window_times),
                "all_seconds": window_times,
                "drifted_columns": window_report.drifted_columns,
            }
        )

    validate = compile_row_validator(infer_contract(profile))
    row = window_frame.iloc[0].to_dict()
    row = {key: value.item() if hasattr(value, "item") else value for key, value in row.items()}
    assert validate(row) == [], validate(row)
    calls = 10_000
    row_times = [t / calls * 1e6 for t in timeit.repeat(lambda: validate(row), number=calls, repeat=7)]
    import resource

    return {
        "import_s": imported - started,
        "profile_s": profiled - imported,
        "drift_s": done - profiled,
        "work_s": done - imported,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "drifted_columns": report.drifted_columns,
        "drifted_share": report.drifted_share,
        "methods": sorted({c.method for c in report.columns}),
        "windows": curve,
        "profile_json_bytes": Path(profile_path).stat().st_size,
        "row_us": statistics.median(row_times),
        "row_columns": len(row),
    }


# --- the driver -------------------------------------------------------------------------------------------


def run_child(command: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, Any], float, float]:
    """Run a child, return its JSON line (plus its CPU seconds), wall time and peak RSS (MB) as the kernel saw it."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise RuntimeError(f"{command[:2]} failed ({child.returncode}):\n{err.read().decode()[-3000:]}")
        lines = [line for line in out.read().decode().splitlines() if line.startswith("{")]
        result = json.loads(lines[-1])
        result["process_cpu_s"] = usage.ru_utime + usage.ru_stime
        return result, wall, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="reference (and current) rows")
    parser.add_argument("--sizes", default=SIZES, help=f"window sizes in rows (default {SIZES})")
    parser.add_argument("--quick", action="store_true", help="100,000 rows, windows of 1e3,1e4,1e5")
    parser.add_argument("--plots", type=Path, default=PLOTS, help=f"where the SVG curve goes (default {PLOTS})")
    parser.add_argument("--keep", action="store_true", help="keep the Parquet files under benchmarks/results/tmp")
    parser.add_argument("--side", choices=["loopml"], help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "loopml":
        print(json.dumps(loopml_side(*args.files)))
        return 0

    rows, sizes = args.rows, parse_sizes(args.sizes)
    if args.quick:
        rows, sizes, args.plots = 100_000, [1_000, 10_000, 100_000], RESULTS / "plots"
    if sizes[-1] > rows:
        parser.error(f"the largest window ({sizes[-1]:,} rows) is larger than the current data (--rows {rows:,})")
    workdir = RESULTS / "tmp" / "monitoring"
    print(f"generating {rows:,} rows x ({NUMERIC} numeric + {CATEGORICAL} categorical), reference and current ...")
    reference, current, windows = make_data(rows, workdir, sizes)
    profile_path = workdir / "profile.json"
    evidently_windows: dict[int, dict[str, Any]] = {}
    try:
        loopml, loopml_wall, loopml_rss = run_child(
            [
                sys.executable, __file__, "--side", "loopml", "--files", str(reference), str(current),
                str(profile_path), json.dumps({size: str(path) for size, path in windows.items()}),
            ]
        )  # fmt: skip
        print(f"loopml done in {loopml['work_s']:.2f} s (profile + drift of {rows:,} rows)", flush=True)
        for size in sizes:
            found, wall, rss = run_child(
                [str(ANCHOR_PYTHON), str(ANCHOR_SCRIPT), "--reference", str(reference), "--current", str(windows[size])]
            )
            evidently_windows[size] = {**found, "process_wall_s": wall, "process_peak_rss_mb": rss}
            mine = next(w for w in loopml["windows"] if w["rows"] == size)
            print(
                f"window {size:,} rows: loopml {mine['seconds']:.3f} s, Evidently {found['drift_s']:.2f} s "
                f"({found['drift_s'] / mine['seconds']:.0f}x)",
                flush=True,
            )
        if sizes[-1] == rows:  # the largest window is the whole current set: that run is scenario 2
            evidently, evidently_wall, evidently_rss = (
                evidently_windows[rows],
                evidently_windows[rows]["process_wall_s"],
                evidently_windows[rows]["process_peak_rss_mb"],
            )
        else:
            evidently, evidently_wall, evidently_rss = run_child(
                [str(ANCHOR_PYTHON), str(ANCHOR_SCRIPT), "--reference", str(reference), "--current", str(current)]
            )
        print(f"Evidently done in {evidently['work_s']:.2f} s (drift of {rows:,} rows)")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    speedup = evidently["work_s"] / loopml["work_s"]
    memory_ratio = loopml_rss / evidently_rss
    rows_out = []
    for mine in loopml["windows"]:
        theirs = evidently_windows[mine["rows"]]
        ratio = theirs["drift_s"] / mine["seconds"]
        judged = mine["rows"] >= WINDOW_TARGET_ROWS
        rows_out.append(
            (
                f"{mine['rows']:,}-row window vs reference of {rows:,}: stored profile vs Evidently, s",
                f"{mine['seconds']:.3f}",
                f"{theirs['drift_s']:.2f}",
                f"{ratio:.0f}x faster",
                f">= {TARGETS['window_speedup']:.0f}x" if judged else "(reported)",
                ratio >= TARGETS["window_speedup"] if judged else None,
            )
        )
    rows_out += [
        (
            f"profile + drift of {rows:,} rows, wall s (after imports)",
            f"{loopml['work_s']:.2f}",
            f"{evidently['work_s']:.2f}",
            f"{speedup:.1f}x faster",
            ">= 30x",
            speedup >= TARGETS["speedup"],
        ),
        (
            "  of which profile build / drift, s",
            f"{loopml['profile_s']:.2f} / {loopml['drift_s']:.2f}",
            f"read {evidently['read_s']:.2f} / run {evidently['drift_s']:.2f}",
            "",
            "",
            None,
        ),
        (
            "whole process incl. imports, wall s",
            f"{loopml_wall:.2f}",
            f"{evidently_wall:.2f}",
            f"{evidently_wall / loopml_wall:.1f}x faster",
            "",
            None,
        ),
        (
            "whole process incl. imports, CPU s",
            f"{loopml['process_cpu_s']:.2f}",
            f"{evidently['process_cpu_s']:.2f}",
            f"{evidently['process_cpu_s'] / loopml['process_cpu_s']:.1f}x less",
            "",
            None,
        ),
        (
            "peak RSS of the process, MB",
            f"{loopml_rss:.0f}",
            f"{evidently_rss:.0f}",
            f"{memory_ratio:.2f}",
            "<= 0.5",
            memory_ratio <= TARGETS["memory_ratio"],
        ),
        (
            f"1-row contract check ({loopml['row_columns']} fields), us",
            f"{loopml['row_us']:.1f}",
            "",
            "",
            "<= 50 us",
            loopml["row_us"] <= TARGETS["row_us"],
        ),
    ]
    window_100k = next((w for w in loopml["windows"] if w["rows"] == 100_000), None)
    if window_100k is not None:
        rows_out.append(
            (
                "100k-row window vs stored profile, s",
                f"{window_100k['seconds']:.3f}",
                "",
                "",
                "<= 0.5 s",
                window_100k["seconds"] <= TARGETS["window_s"],
            )
        )
    widths = [max(len(str(r[i])) for r in rows_out) for i in range(5)]
    header = ("scenario", "loopml", "Evidently", "ratio", "target")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  result")
    for row in rows_out:
        verdict = "" if row[5] is None else ("pass" if row[5] else "FAIL")
        print("  ".join(str(c).ljust(w) for c, w in zip(row[:5], widths, strict=True)) + f"  {verdict}")
    print()
    print(f"drifted columns (shifted: {', '.join(SHIFTED)}):")
    print(f"  loopml    ({', '.join(loopml['methods'])}): {loopml['drifted_columns']}")
    print(f"  Evidently (wasserstein, jensen-shannon): {evidently['drifted_columns']}")
    for mine in loopml["windows"]:
        theirs = evidently_windows[mine["rows"]]
        print(f"  window {mine['rows']:,}: loopml {mine['drifted_columns']}, Evidently {theirs['drifted_columns']}")

    plot = args.plots / "monitoring-windows.svg"
    line_plot(
        plot,
        f"Drift of a window against a {rows:,}-row reference (s)",
        "rows in the window",
        "seconds",
        {
            "loopml (stored profile)": [(w["rows"], w["seconds"]) for w in loopml["windows"]],
            "Evidently DataDriftPreset": [(size, e["drift_s"]) for size, e in sorted(evidently_windows.items())],
        },
        log_x=True,
        log_y=True,
    )
    RESULTS.mkdir(exist_ok=True)
    document = {
        "rows": rows,
        "sizes": sizes,
        "columns": {"numeric": NUMERIC, "categorical": CATEGORICAL},
        "shifted": list(SHIFTED),
        "loopml": {**loopml, "process_wall_s": loopml_wall, "process_peak_rss_mb": loopml_rss},
        "evidently": {**evidently, "process_wall_s": evidently_wall, "process_peak_rss_mb": evidently_rss},
        "evidently_windows": evidently_windows,
        "speedup": speedup,
        "memory_ratio": memory_ratio,
        "table": [list(row) for row in rows_out],
        "targets": TARGETS,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    (RESULTS / "monitoring.json").write_text(json.dumps(document, indent=2))
    print(f"\nplot: {plot}")
    print(f"written to {RESULTS / 'monitoring.json'} (load average at the end: {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
