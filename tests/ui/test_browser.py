"""The runs pages in Chromium against a real `loopml server`: filter, compare with the chart's tooltip, XSS
payloads shown as text, a viewer who cannot act; screenshots of each page for docs/ui.md."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import loopml as lm
from e2e.conftest import ADMIN

from .support import UiServer, new_page, screenshot

pytestmark = pytest.mark.slow

XSS_NAME = "<img src=x onerror=window.__xss=1>"
XSS_TEXT = "<script>window.__xss=1</script>"
STEPS = 40


@dataclass
class World:
    experiment: int
    runs: dict[str, str]
    """run name -> id"""


@pytest.fixture(scope="module")
def world(ui_server: UiServer, tmp_path_factory: pytest.TempPathFactory) -> World:
    files = tmp_path_factory.mktemp("artifacts")
    (files / "metrics.csv").write_text("fold,rmse\n1,0.41\n2,0.39\n")
    (files / "notes.txt").write_text(f"trained on the 2011 rentals\n{XSS_TEXT}\n")
    (files / "xss.txt").write_text("payload in the name")
    runs = {}
    with lm.Client(tracking_uri=ui_server.url, token=ADMIN) as client:
        experiment = client.experiments.get_or_create("bike-demand").id
        for i, (depth, rate) in enumerate([(3, 0.3), (5, 0.1), (8, 0.05), (12, 0.01)]):
            run = client.runs.create(
                experiment,
                f"gbm-depth-{depth}",
                params={"max_depth": depth, "learning_rate": rate},
                tags={"team": "demand"},
            )
            for step in range(STEPS):
                client.runs.log_metric(run.id, "rmse", (i + 1) * step / 10, step=step)
            client.runs.log_metric(run.id, "r2", 0.6 + 0.08 * i, step=0)
            client.runs.log_artifact(run.id, files / "metrics.csv", "eval/metrics.csv")
            client.runs.log_artifact(run.id, files / "notes.txt")
            runs[run.name] = run.id
        hostile = client.runs.create(experiment, XSS_NAME, params={"note": XSS_TEXT}, tags={"owner": XSS_NAME})
        client.runs.log_metric(hostile.id, "rmse", 1.0, step=0)
        client.runs.log_artifact(hostile.id, files / "xss.txt", XSS_NAME.replace("/", ""))
        runs["hostile"] = hostile.id
        client.runs.flush()
    return World(experiment, runs)


def test_filter_compare_and_read_the_tooltip(ui_server: UiServer, browser: Any, world: World) -> None:
    page = new_page(browser, ui_server, ADMIN)
    screenshot(page, "experiments")
    page.get_by_role("link", name="bike-demand").click()
    page.get_by_label("Filter").fill("params.learning_rate != '0.3' and metrics.r2 > 0.7")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*filter=.*"))
    names = page.locator("#runs tbody td:nth-child(2)").all_inner_texts()
    assert sorted(names) == ["gbm-depth-12", "gbm-depth-8"]
    page.get_by_role("link", name="Reset").click()
    page.get_by_label("Order by").fill("metrics.r2 DESC")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*order_by=.*"))
    screenshot(page, "runs")
    page.get_by_label("select gbm-depth-3").check()
    page.get_by_label("select gbm-depth-5").check()
    page.get_by_role("button", name="Compare selected runs").click()
    page.wait_for_url("**/compare?**")
    page.locator("#key").select_option("rmse")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**key=rmse**")
    chart = page.locator("[data-chart]")
    chart.and_(page.locator("[data-drawn]")).wait_for()
    box = page.locator("[data-chart] canvas").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    tip = page.locator("[data-chart] .tooltip")
    tip.wait_for(state="visible")
    lines = tip.inner_text().splitlines()
    read = dict(re.fullmatch(r"(gbm-depth-\d+): ([\d.]+) \(step (\d+)\)", line).groups()[0:3:2] for line in lines[1:])  # type: ignore[union-attr]
    assert set(read) == {"gbm-depth-3", "gbm-depth-5"}
    for line in lines[1:]:
        name, value, step = re.fullmatch(r"(gbm-depth-\d+): ([\d.]+) \(step (\d+)\)", line).groups()  # type: ignore[union-attr]
        factor = 1 if name == "gbm-depth-3" else 2
        assert float(value) == pytest.approx(factor * int(step) / 10)  # the logged value at that step
    screenshot(page, "compare")
    page.get_by_label("Log scale").first.check()
    page.get_by_role("button", name="Reset zoom").click()
    page.get_by_role("link", name="gbm-depth-3").first.click()
    page.wait_for_url("**/runs/**")
    page.locator("[data-chart]").first.scroll_into_view_if_needed()
    page.locator("[data-chart][data-drawn]").first.wait_for()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "run")
    page.get_by_role("link", name="eval/").click()
    page.get_by_role("link", name="metrics.csv").click()
    assert page.locator("table.grid td").all_inner_texts()[:2] == ["1", "0.41"]
    screenshot(page, "artifact")
    page.context.close()


def test_hostile_text_is_shown_as_text(ui_server: UiServer, browser: Any, world: World) -> None:
    page = new_page(browser, ui_server, ADMIN)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    hostile = world.runs["hostile"]
    paths = [
        f"/experiments/{world.experiment}?col=params.note&col=tags.owner&col=metrics.rmse",
        f"/runs/{hostile}",
        f"/compare?run={hostile}&run={world.runs['gbm-depth-3']}",
        f"/runs/{world.runs['gbm-depth-3']}/artifact?path=notes.txt",
    ]
    for path in paths:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__xss") is None, path
        assert page.locator("img[src=x]").count() == 0, path
    page.goto(paths[1])
    assert page.get_by_role("heading", name=f"Run {XSS_NAME}").is_visible()
    assert page.get_by_role("cell", name=XSS_TEXT).is_visible()
    assert page.get_by_role("link", name=XSS_NAME.replace("/", "")).is_visible()  # the artifact's name
    assert dialogs == []
    page.context.close()


def test_a_viewer_sees_no_action_and_a_forged_one_is_refused(ui_server: UiServer, browser: Any, world: World) -> None:
    _, secret = ui_server.token("ui-viewer", "viewer")
    page = new_page(browser, ui_server, secret)
    run = world.runs["gbm-depth-5"]
    page.goto(f"/runs/{run}")
    assert page.get_by_role("button", name="Set tag").count() == 0
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = page.request.post(f"/runs/{run}/tags", form={"key": "stage", "value": "prod", "csrf_token": csrf or ""})
    assert forged.status == 403
    no_csrf = page.request.post(f"/runs/{run}/tags", form={"key": "stage", "value": "prod"})
    assert no_csrf.status == 403
    page.context.close()


def test_screenshots_are_1280_by_800() -> None:
    shots = Path(__file__).resolve().parents[2] / "docs" / "ui"
    for png in shots.glob("*.png"):
        width, height = int.from_bytes(png.read_bytes()[16:20], "big"), int.from_bytes(png.read_bytes()[20:24], "big")
        assert (width, height) == (1280, 800), png.name


def test_pages_pass_axe_core(ui_server: UiServer, browser: Any, world: World) -> None:
    """axe-core (the copy shipped in the axe-playwright-python wheel, injected by the test: nothing is fetched)
    finds no accessibility violation on the pages of this section."""
    axe = pytest.importorskip("axe_playwright_python.base", reason="axe-playwright-python is in the dev extras")
    page = new_page(browser, ui_server, None)
    found: dict[str, list[str]] = {}
    paths = [
        "/login",
        "/experiments",
        f"/experiments/{world.experiment}",
        f"/runs/{world.runs['gbm-depth-3']}",
        f"/compare?run={world.runs['gbm-depth-3']}&run={world.runs['gbm-depth-5']}",
        f"/runs/{world.runs['gbm-depth-3']}/artifact?path=eval/metrics.csv",
    ]
    for path in paths:
        if path == "/experiments":
            page.get_by_label("API token").fill(ADMIN)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/experiments")
        else:
            page.goto(path)
        page.wait_for_load_state("networkidle")
        page.evaluate(axe.AXE_SCRIPT)
        result = page.evaluate("axe.run({resultTypes: ['violations']})")
        found[path] = [f"{v['id']} ({v['impact']}): {v['help']}" for v in result["violations"]]
    assert found == {path: [] for path in paths}
    page.context.close()
