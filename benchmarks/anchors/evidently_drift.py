"""Anchor side of benchmarks/monitoring.py: Evidently's DataDriftPreset on the same Parquet files.

Run by `.venv-anchors/bin/python` as a subprocess; prints one JSON line (timings in seconds, the peak
RSS of this process, and the columns Evidently called drifted).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", required=True)
    parser.add_argument("--current", required=True)
    args = parser.parse_args()

    started = time.perf_counter()
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    imported = time.perf_counter()
    reference = pd.read_parquet(args.reference)
    current = pd.read_parquet(args.current)
    loaded = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    result = snapshot.dict()
    done = time.perf_counter()

    drifted = []
    share = None
    for metric in result["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            if metric["value"] >= config.get("threshold", 0.1):  # distances at Evidently's defaults (>= 1000 rows)
                drifted.append(config["column"])
        elif config.get("type", "").endswith("DriftedColumnsCount"):
            share = metric["value"]["share"]
    print(
        json.dumps(
            {
                "import_s": imported - started,
                "read_s": loaded - imported,
                "drift_s": done - loaded,
                "work_s": done - imported,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "drifted_columns": sorted(drifted),
                "drifted_share": share,
                "evidently": sys.modules["evidently"].__dict__.get("__version__", "?"),
            }
        )
    )


if __name__ == "__main__":
    main()
