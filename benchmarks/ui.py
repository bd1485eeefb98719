"""Web UI benchmark (issue 14): loopml's runs page against MLflow's UI over the same runs, in Chromium.

    .venv/bin/python benchmarks/ui.py            # 10,000 runs x 10 params x 10 metrics (needs .venv-anchors)
    .venv/bin/python benchmarks/ui.py --runs 2000 --reps 3   # smoke run

Scenarios, in one run:
1. Runs page of an experiment: time from navigation start to the table showing its first rows, read in the
   page (`performance.now()`, which counts from navigation start) as soon as they are on screen. loopml: the
   runs page with its first 100 rows (server-rendered: all 100 rows are in the table). MLflow 3: its UI at
   `#/experiments/<id>/runs`, until the grid shows the newest run and its footer says "100 matching runs" (its
   first page of 100 runs arrived and was drawn; its grid renders only the rows in view). Same Chromium, same
   viewport, one warm-up each, then the median of `--reps` navigations. Target: loopml at least 5x faster.
2. Server time of loopml's runs page (100 rows, default columns): p50 of `--server-reps` GETs. Target < 100 ms.
3. Compare 10 runs x 10,000 steps: from navigation to the overlaid chart drawn (the chart marks itself
   drawn after its data arrived and the canvas was painted). Target < 1 s.

Both stores hold the same seeded runs (`_common.search_runs_data`), written by the tracking benchmark's
populate functions. Chromium is Debian's /usr/bin/chromium driven by Playwright for Python.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
from _common import SEARCH_EXPERIMENT, run_anchor, summarize
from playwright.sync_api import sync_playwright
from tracking import TOKEN, loopml_server, mlflow_server, populate_loopml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
ANCHOR_PYTHON = REPO / ".venv-anchors" / "bin" / "python"
ANCHOR_SCRIPT = HERE / "anchors" / "mlflow_tracking.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip
VIEWPORT = {"width": 1280, "height": 800}
COMPARE_RUNS, COMPARE_STEPS = 10, 10_000


def add_compare_runs(home: Path) -> list[str]:
    """10 runs of 10,000 steps of `loss` each, in the embedded store the server will open (not timed)."""
    import loopml as lm

    ids = []
    with lm.Client(home=home) as client:
        for r in range(COMPARE_RUNS):
            run = client.runs.create("compare", f"curve-{r}")
            for step in range(COMPARE_STEPS):
                client.runs.log_metric(run.id, "loss", math.exp(-step / (1000 * (r + 1))) + 0.01 * math.sin(step), step)
            ids.append(run.id)
        client.runs.flush()
    return ids


def page_time(page: Any, url: str, *ready: str) -> float:
    """Milliseconds from navigation start until each of `ready` (locators) is visible, read inside the page."""
    page.goto(url, wait_until="commit")
    for selector in ready:
        page.locator(selector).first.wait_for(state="visible", timeout=120_000)
    return float(page.evaluate("performance.now()"))


def loopml_side(uri: str, experiment_id: int, compare_ids: list[str], reps: int, server_reps: int) -> dict[str, Any]:
    with httpx.Client(base_url=uri, timeout=60) as http:
        http.post("/login", data={"token": TOKEN})
        path = f"/experiments/{experiment_id}"
        for _ in range(3):
            assert http.get(path).status_code == 200
        server = []
        for _ in range(server_reps):
            started = time.perf_counter()
            answer = http.get(path)
            server.append(time.perf_counter() - started)
            assert answer.status_code == 200
            assert answer.text.count('name="run"') == 100
        cookie = http.cookies.get("loopml_session")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport=VIEWPORT)
        context.add_cookies([{"name": "loopml_session", "value": cookie, "url": uri}])
        page = context.new_page()
        runs_page = [page_time(page, uri + path, "#runs tbody tr:nth-child(100)") for _ in range(reps + 1)][1:]
        compare_url = f"{uri}/compare?key=loss&" + "&".join(f"run={i}" for i in compare_ids)
        chart = [page_time(page, compare_url, "[data-chart][data-drawn]") for _ in range(reps + 1)][1:]
        drawn = page.locator("[data-chart]").get_attribute("data-drawn")
        browser.close()
    return {
        "runs_page_ms": runs_page,
        "server": summarize(server),
        "compare_chart_ms": chart,
        "compare_drawn_mark_ms": float(drawn or "nan"),
    }


def mlflow_side(uri: str, reps: int) -> dict[str, Any]:
    with urllib.request.urlopen(  # noqa: S310 - loopback URL we built
        f"{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name={SEARCH_EXPERIMENT}"
    ) as answer:
        experiment_id = json.loads(answer.read())["experiment"]["experiment_id"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        url = f"{uri}/#/experiments/{experiment_id}/runs"
        newest = "text=run-" + f"{NEWEST:06d}"
        times = []
        for _ in range(reps + 1):
            page.goto("about:blank")
            times.append(page_time(page, url, newest, "text=100 matching runs"))
        page.screenshot(path=str(RESULTS / "ui-mlflow.png"))
        browser.close()
    return {"runs_page_ms": times[1:]}


NEWEST = 0


def main() -> None:
    global NEWEST
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--server-reps", type=int, default=50)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    NEWEST = args.runs - 1
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tmp").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ui-", dir=RESULTS / "tmp"))
    loopml_home, mlflow_dir = work / "loopml", work / "mlflow"
    mlflow_dir.mkdir()
    try:
        print(f"populating both stores with {args.runs:,} runs x 10 params x 10 metrics ...", flush=True)
        mlflow_fill = run_anchor(
            ANCHOR_PYTHON, ANCHOR_SCRIPT, "populate", "--db", str(mlflow_dir / "mlflow.db"),
            "--artifacts", str(mlflow_dir / "artifacts"), "--runs", str(args.runs),
        )  # fmt: skip
        populate_loopml(loopml_home, args.runs, 0)
        compare_ids = add_compare_runs(loopml_home)
        import loopml as lm

        with lm.Client(home=loopml_home) as client:
            experiment_id = client.experiments.get_or_create(SEARCH_EXPERIMENT).id
        uri, _, running = loopml_server(loopml_home, work / "loopml.log")
        with running:
            loopml = loopml_side(uri, experiment_id, compare_ids, args.reps, args.server_reps)
        uri, _, running = mlflow_server(mlflow_dir, work / "mlflow.log")
        with running:
            mlflow = mlflow_side(uri, args.reps)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ours, theirs = statistics.median(loopml["runs_page_ms"]), statistics.median(mlflow["runs_page_ms"])
    chart = statistics.median(loopml["compare_chart_ms"])
    result = {
        "runs": args.runs,
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "mlflow_version": mlflow_fill.get("mlflow_version"),
        "loopml": loopml,
        "mlflow": mlflow,
        "runs_page_median_ms": {"loopml": ours, "mlflow": theirs, "ratio": theirs / ours},
        "server_p50_ms": loopml["server"]["median_ms"],
        "compare_chart_median_ms": chart,
    }
    (RESULTS / "ui.json").write_text(json.dumps(result, indent=2))
    print(f"\nruns page, {args.runs:,} runs, first rows shown (median of {args.reps}):")
    print(f"  loopml {ours:8.1f} ms   MLflow {theirs:8.1f} ms   ratio {theirs / ours:5.1f}x (target >= 5x: "
          f"{'met' if theirs / ours >= 5 else 'MISSED'})")  # fmt: skip
    server = loopml["server"]
    print(f"  loopml server time for the page: p50 {server['median_ms']:.1f} ms, p90 {server['p90_ms']:.1f} ms "
          f"(target p50 < 100 ms: {'met' if server['median_ms'] < 100 else 'MISSED'})")  # fmt: skip
    print(f"compare {COMPARE_RUNS} runs x {COMPARE_STEPS:,} steps, chart drawn: median {chart:.0f} ms "
          f"(target < 1000 ms: {'met' if chart < 1000 else 'MISSED'})")  # fmt: skip


if __name__ == "__main__":
    main()
