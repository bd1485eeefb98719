"""The review pages (models, deployments, monitors, audit) in Chromium against a real `loopml server` filled by
the demo's flow (tests/ui/demo_world.py): a model and its lineage, a canary's decisions appearing while the page
is open, a promotion with a reason seen in the audit log, a monitor's heat map, user text shown as text, and
who may see and change what."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import loopml as lm
from e2e.conftest import ADMIN, ServerProcess, free_port

from . import demo_world
from .support import UiServer, new_page, require_chromium, screenshot

pytestmark = pytest.mark.slow

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
DEADLINE_S = 90
"""For the rollout controller (every second here) to decide on a loaded machine."""


@dataclass
class Demo:
    server: UiServer
    world: demo_world.DemoWorld


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    require_chromium()
    home = tmp_path_factory.mktemp("ui-review")
    log_dir = home / "request-log"
    process = ServerProcess(
        home=home,
        database_url=f"sqlite:///{home / 'loopml.db'}",
        port=free_port(),
        extra_env={
            "LOOPML_REQUEST_LOG_DIR": str(log_dir),
            "LOOPML_ROLLOUT_INTERVAL_SECONDS": "1",
            "LOOPML_ROLLOUT_LEASE_SECONDS": "10",
        },
    )
    process.start()
    try:
        world = demo_world.fill(process.uri, ADMIN, log_dir)
        world.client.models.update(demo_world.MODEL, description=f"demand model {XSS}")
        world.client.models.set_alias(demo_world.MODEL, "shadowed", 1, reason=f"reason {XSS}")
        yield Demo(UiServer(process), world)
    finally:
        lm.set_tracking_uri(None)
        process.stop()


def _no_script_ran(page: Any) -> None:
    assert page.evaluate("window.__xss") is None


UNNAMED = """() => {
  const named = (e) => (e.getAttribute('aria-label') || e.textContent || e.getAttribute('title') || '').trim();
  const found = [];
  for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (!e.labels || e.labels.length === 0) found.push('control ' + (e.name || e.id));
  }
  for (const e of document.querySelectorAll('a, button, summary')) if (!named(e)) found.push('link ' + e.outerHTML);
  for (const e of document.querySelectorAll('[role=img], [role=group], table.heat')) {
    if (!e.getAttribute('aria-label')) found.push('figure ' + e.tagName);
  }
  return found;
}"""


def _accessible(page: Any) -> None:
    """What axe-core's label and name rules check, for this page: every control labelled, every link and button
    named, every chart named (axe-core itself is not installed: it comes from npm)."""
    assert page.evaluate(UNNAMED) == []


def test_a_model_its_versions_alias_history_and_lineage(demo: Demo, browser: Any) -> None:
    page = new_page(browser, demo.server, ADMIN)
    page.goto("/models")
    page.get_by_role("link", name="bike-demand").click()
    page.wait_for_url("**/models/bike-demand")
    assert f"demand model {XSS}" in page.locator("main").inner_text()  # shown as text, not run
    history = page.locator("#alias-history + table").inner_text()
    assert "lowest validation rmse" in history and f"reason {XSS}" in history
    _no_script_ran(page)
    _accessible(page)
    screenshot(page, "model")
    page.get_by_role("link", name="1", exact=True).click()
    page.wait_for_url("**/models/bike-demand/versions/1")
    lineage = page.get_by_role("list", name="From the data to the deployments").inner_text()
    assert (
        "bike-sharing-hours (6442 rows)" in lineage
        and "champion-jan-sep" in lineage
        and "bike-demand" in lineage
        and "stable at 100%" in lineage
    )
    assert page.locator("#package + p").inner_text().startswith("Verified")
    assert "temp" in page.locator("#profile ~ table").first.inner_text()
    _accessible(page)
    screenshot(page, "model-version")
    page.context.close()


def test_a_canary_s_decisions_appear_then_a_promotion_with_a_reason_is_audited(demo: Demo, browser: Any) -> None:
    _, editor = demo.server.token("release-manager", "editor")
    page = new_page(browser, demo.server, editor)
    started = demo_world.start_canary(demo.world, reason=f"challenger {XSS}")
    page.goto("/deployments/bike-demand")
    assert page.get_by_test_id("state").inner_text() == "progressing"
    assert f"challenger {XSS}" in page.locator("#timeline-table").inner_text()
    decisions = page.locator("#timeline-table tr.decision")
    assert decisions.count() == 0
    demo_world.serve(demo.world, started)
    decisions.first.wait_for(timeout=DEADLINE_S * 1000)  # the page reloads its timeline by itself
    assert re.search(r"step 1: \w+ -> \w+", decisions.first.inner_text())
    _no_script_ran(page)  # the reloaded fragment is escaped too
    _accessible(page)
    screenshot(page, "deployment")
    state = page.get_by_test_id("state").inner_text()
    if state in ("progressing", "paused"):
        promote = page.locator("details.action", has=page.locator("summary", has_text="Promote bike-demand/2"))
        promote.locator("summary").click()
        promote.get_by_label("Reason (kept in the history and the audit log)").fill("reviewed the canary's numbers")
        promote.get_by_label(re.compile("I confirm: promote")).check()
        promote.get_by_role("button", name="Promote bike-demand/2").click()
        page.wait_for_url("**/deployments/bike-demand")
        assert page.get_by_test_id("state").inner_text() == "promoted"
        reason = "reviewed the canary's numbers"
    else:
        reason = "analysis"  # the controller finished the rollout first on a fast machine
    page.context.close()
    admin = new_page(browser, demo.server, ADMIN)
    admin.goto("/audit?action=deployment.&entity_id=bike-demand")
    assert admin.locator("#chain").inner_text().startswith("Chain verified")
    events = admin.locator("#events").inner_text()
    assert reason in events and "deployment.update" in events
    if reason != "analysis":
        assert "token:release-manager" in events
    _accessible(admin)
    screenshot(admin, "audit")
    admin.context.close()


def test_a_monitor_s_heat_map_opens_a_cell_s_distributions(demo: Demo, browser: Any) -> None:
    page = new_page(browser, demo.server, ADMIN)
    page.goto("/monitors")
    page.get_by_role("link", name="bike", exact=True).click()
    page.wait_for_url("**/monitors/bike")
    heat = page.get_by_role("table", name="Drift score per feature (rows) and window (columns)")
    assert heat.locator("tbody tr").count() >= 5  # one row per feature
    assert page.get_by_role("img", name=re.compile(r"^rmse over \d+ windows")).is_visible()  # labels joined
    _accessible(page)
    screenshot(page, "monitor")
    heat.get_by_role("link", name=re.compile(r"^temp: .*window 1$")).focus()
    page.keyboard.press("Enter")  # the heat map works from the keyboard
    page.wait_for_url(re.compile(r".*feature=temp.*"))
    assert page.locator("#distribution").inner_text().startswith("temp in window")
    assert page.get_by_role("img", name="Shares of temp: reference against window").is_visible()
    screenshot(page, "monitor-distribution")
    page.context.close()


def test_a_viewer_is_not_offered_changes_and_a_forged_one_is_refused(demo: Demo, browser: Any) -> None:
    _, viewer = demo.server.token("watcher", "viewer")
    page = new_page(browser, demo.server, viewer)
    page.goto("/deployments/bike-demand")
    assert page.locator("details.action").count() == 0
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = page.request.post(
        "/deployments/bike-demand/rollback", form={"csrf_token": csrf, "confirm": "yes", "reason": "x"}
    )
    assert forged.status == 403
    page.goto("/audit")
    assert "403" in page.title() or page.locator("main").inner_text().lower().count("admin") > 0
    page.context.close()
    _, editor = demo.server.token("no-csrf", "editor")
    page = new_page(browser, demo.server, editor)
    missing = page.request.post("/deployments/bike-demand/rollback", form={"confirm": "yes", "reason": "x"})
    assert missing.status == 403
    page.context.close()


def _session(server: UiServer, secret: str) -> httpx.Client:
    http = httpx.Client(base_url=server.url, timeout=30)
    answer = http.post("/login", data={"token": secret, "next": "/models"})
    assert answer.status_code == 303, answer.text
    return http


def _csrf(http: httpx.Client) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', http.get("/models").text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
@pytest.mark.parametrize("where", ["default", "other"])
def test_role_x_project_matrix(demo: Demo, role: str, where: str) -> None:
    answer = httpx.post(
        f"{demo.server.url}/api/v1/tokens",
        json={"name": f"{role}-{where}-{time.monotonic_ns()}", "role": role, "project": where},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
    )
    answer.raise_for_status()
    http = _session(demo.server, answer.json()["secret"])
    try:
        seen = 200 if where == "default" else 404
        for path in ("/models/bike-demand", "/models/bike-demand/versions/1", "/deployments/bike-demand"):
            assert http.get(path).status_code == seen, path
        assert http.get("/monitors/bike").status_code == seen
        assert http.get("/pipelines").status_code == 200  # lists only what the token's project holds
        listed = http.get("/deployments").text
        assert ('href="/deployments/bike-demand"' in listed) is (where == "default")
        audit = http.get("/audit")
        assert audit.status_code == (200 if role == "admin" else 403)
        if role == "admin":
            assert ("bike-demand" in audit.text) is (where == "default")
        # resuming a deployment that is not paused: 400 once allowed to change it, else 403 (role) or 404
        changed = http.post(
            "/deployments/bike-demand/resume", data={"csrf_token": _csrf(http), "confirm": "yes", "reason": "r"}
        )
        expected = 403 if role == "viewer" else (400 if where == "default" else 404)
        assert changed.status_code == expected, changed.text[:300]
    finally:
        http.close()


PIPELINE = f"""
import loopml as lm


@lm.step
def load(n: int) -> list:
    print("loading", n, "hours", {XSS!r})
    return [10 + 3 * h for h in range(n)]


@lm.step
def fit(rentals: list) -> dict:
    return {{"slope": float(rentals[1] - rentals[0])}}


@lm.step
def report(rentals: list, model: dict) -> str:
    return str(model)


@lm.pipeline
def demand(n: int = 24):
    rentals = load(n)
    return report(rentals, fit(rentals))


for _ in range(2):  # the second run reuses every step from the cache
    assert demand.run(n=24, executor="inline").status == "FINISHED"
"""


def test_a_pipeline_run_s_dag_cache_decisions_and_logs(demo: Demo, browser: Any, tmp_path: Path) -> None:
    script = tmp_path / "demand_pipeline.py"
    script.write_text(PIPELINE)
    env = demo.server.process.env()
    done = subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    page = new_page(browser, demo.server, ADMIN)
    page.goto("/pipelines?pipeline=demand")
    runs = page.get_by_role("table", name="Pipeline runs, newest first").locator("tbody tr")
    assert runs.count() == 2
    runs.first.get_by_role("link").first.click()
    dag = page.get_by_role("group", name="The run's steps and what each depends on")
    assert dag.get_by_role("link", name="report: cached").is_visible()
    assert "hit" in page.get_by_role("table", name="Steps with their state and cache decision").inner_text()
    page.goto("/pipelines?pipeline=demand")
    runs.last.get_by_role("link").first.click()
    page.get_by_role("link", name="load: finished").click()
    page.wait_for_url(re.compile(r".*step=load.*"))
    assert f"loading 24 hours {XSS}" in page.locator("pre.log").inner_text()  # a log is text
    _no_script_ran(page)
    _accessible(page)
    screenshot(page, "pipeline-run")
    page.context.close()


def test_the_review_pages_pass_axe_core(demo: Demo, browser: Any) -> None:
    """axe-core (shipped in the axe-playwright-python wheel of the dev extras, injected by the test) finds no
    accessibility violation on the models, deployments, monitors, pipelines and audit pages."""
    axe = pytest.importorskip("axe_playwright_python.base", reason="axe-playwright-python is in the dev extras")
    page = new_page(browser, demo.server, ADMIN)
    windows = demo.world.client.monitors.windows(demo_world.MONITOR)
    paths = [
        "/models",
        "/models/bike-demand",
        "/models/bike-demand/versions/1",
        "/deployments",
        "/deployments/bike-demand",
        "/monitors",
        f"/monitors/bike?window={windows[0].start_time}&feature=temp",
        "/pipelines",
        "/audit",
    ]
    found: dict[str, list[str]] = {}
    for path in paths:
        page.goto(path)
        page.evaluate(axe.AXE_SCRIPT)
        result = page.evaluate("axe.run({resultTypes: ['violations']})")
        found[path] = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"]
        ]
    assert found == {path: [] for path in paths}
    page.context.close()
