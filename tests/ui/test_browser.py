"""The Dagster UI in headless Chromium (Debian's package, driven by Playwright): the asset graph, an asset's
lineage, and a materialization launched with the UI's own button. Screenshots go to tests/artifacts/ui/.

Every wait is for the thing that proves the page is ready (the graph drawn, the button enabled, the run's link
shown), through Playwright's auto-waiting assertions, with timeouts sized for a loaded 2-core machine.
"""

import re
import shutil
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import expect

from cdp_assets.definitions import build_definitions
from tests.conftest import require
from tests.ui.conftest import ARTIFACTS

pytestmark = pytest.mark.xdist_group("ui")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
UI_TIMEOUT_MS = 120_000
expect.set_options(timeout=UI_TIMEOUT_MS)
# What the UI shows when a page breaks: a failed GraphQL query, a crashed view, a code location that won't load.
ERROR_TEXTS = ("Unexpected GraphQL error", "Something went wrong", "An unexpected error", "Error loading",
               "PythonError")
# Chromium reports this as an uncaught error when a resize handler changes layout again within a frame, which the
# UI's graph and tables do more often on a slow machine; the specification calls it a notice that nothing was lost.
BENIGN_PAGE_ERRORS = ("ResizeObserver loop completed with undelivered notifications",)
# Without these, Chromium reaches out to Google's services at start, which this machine's closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    require(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (Debian packages chromium and chromium-driver; "
                                     ".ci/run installs them)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                                              timeout=UI_TIMEOUT_MS)
        yield chromium
        chromium.close()


def new_page(browser, dagster_dev):
    context = browser.new_context(base_url=dagster_dev.url, viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    page.errors = []

    def record(error) -> None:
        if not str(error).startswith(BENIGN_PAGE_ERRORS):
            page.errors.append(str(error))

    page.on("pageerror", record)
    return page


@pytest.fixture(scope="module")
def community_dialog_skipped(browser, dagster_dev) -> None:
    """A new instance greets its first visitor with the community sign-up dialog, a second after the page loads.
    Skip it once, as a user would; the server remembers, so no test's click or screenshot ever meets it."""
    if not dagster_dev.graphql("{ shouldShowNux }")["shouldShowNux"]:
        return
    page = new_page(browser, dagster_dev)
    page.goto("/")
    dialog = page.get_by_role("dialog").filter(has_text="Join the Dagster community")
    dialog.get_by_role("button", name="Skip").click()
    expect(dialog).to_be_hidden()
    dagster_dev.wait_for("the server to remember the sign-up dialog was skipped",
                         lambda: not dagster_dev.graphql("{ shouldShowNux }")["shouldShowNux"],
                         lambda: "shouldShowNux is still true", timedelta(milliseconds=UI_TIMEOUT_MS))
    page.context.close()


@pytest.fixture
def page(browser, dagster_dev, community_dialog_skipped):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = new_page(browser, dagster_dev)
    yield page
    page.context.close()


def graph(page):
    """The lineage graph, drawn in SVG: the same names in the sidebar or breadcrumbs don't prove it rendered."""
    return page.locator("svg")


def shows_no_error(page) -> None:
    text = page.inner_text("body")
    assert [t for t in ERROR_TEXTS if t in text] == []
    assert page.errors == []


def test_the_asset_graph_shows_every_stage(page):
    graph_of_the_code = build_definitions().resolve_asset_graph()
    stages = sorted({graph_of_the_code.get(key).group_name for key in graph_of_the_code.get_all_asset_keys()})
    page.goto("/asset-groups")
    for stage in stages:
        expect(graph(page).get_by_text(stage, exact=True)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "01_asset_graph.png"), full_page=True)
    shows_no_error(page)


def test_an_assets_lineage_shows_its_neighbours(page):
    unified = dg.AssetKey(["core", "unified_profiles"])
    upstream, downstream = dg.AssetKey(["core", "record_profiles"]), dg.AssetKey(["audiences", "purchasers_30d"])
    lineage = build_definitions().resolve_asset_graph().get(unified)
    assert upstream in lineage.parent_keys and downstream in lineage.child_keys, "pick neighbours the code has"

    page.goto("/assets/core/unified_profiles?view=lineage&lineageScope=neighbors")
    for key in (upstream, unified, downstream):  # short names: the graph truncates long ones
        expect(graph(page).get_by_text(key.path[-1], exact=True)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "02_unified_profiles_lineage.png"), full_page=True)
    shows_no_error(page)


def test_a_materialization_launched_from_the_ui_succeeds(page, dagster_dev):
    page.goto("/assets/staging/exchange_rates")
    # Its name is "materialization Materialize": the icon is labelled too. Disabled until the definition loads.
    materialize = page.get_by_role("button", name=re.compile(r"\bMaterialize$"))
    expect(materialize).to_be_enabled()
    with page.expect_response(lambda r: r.url.endswith("?op=LaunchPipelineExecution")) as answer:
        materialize.click()
    launched = answer.value.json()["data"]["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["id"]
    expect(page.get_by_text(f"Launched run {run_id[:8]}")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "03_materialization_launched.png"), full_page=True)

    run = dagster_dev.finished_run(run_id, "the materialization launched from the UI")
    assert run.status == "SUCCESS", run
    assert "staging/exchange_rates" in run.materialized

    page.goto("/assets/staging/exchange_rates")
    expect(page.locator(f'a[href^="/runs/{run_id}"]').first).to_be_visible()  # its latest materialization's run
    expect(page.get_by_text("Row count", exact=True)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "04_exchange_rates_materialized.png"), full_page=True)
    shows_no_error(page)
