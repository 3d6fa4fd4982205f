"""The Dagster UI in headless Chromium (Debian's package, driven by Playwright): the asset graph, an asset's
lineage, and a materialization launched with the UI's own button. Screenshots go to tests/artifacts/ui/."""

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import require
from tests.ui.conftest import REPO

pytestmark = pytest.mark.xdist_group("ui")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "tests" / "artifacts" / "ui"
# What the UI shows when a page breaks: a failed GraphQL query, a crashed view, a code location that won't load.
ERROR_TEXTS = ("Unexpected GraphQL error", "Something went wrong", "An unexpected error", "Error loading",
               "PythonError")
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
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def visit(page, url: str) -> None:
    """Open a page of the UI, past the community sign-up dialog a new browser profile is shown once."""
    page.goto(url)
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=5_000)
    except PlaywrightTimeout:
        return
    skip.click()


def shows_no_error(page) -> None:
    text = page.inner_text("body")
    assert [t for t in ERROR_TEXTS if t in text] == []
    assert page.errors == []


def test_the_asset_graph_shows_every_stage(page, dagster_dev):
    visit(page, f"{dagster_dev.url}/asset-groups")
    for group in ("raw", "staging", "core", "audiences", "activation"):
        page.get_by_text(group, exact=True).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "01_asset_graph.png"), full_page=True)
    shows_no_error(page)


def test_an_assets_lineage_shows_its_neighbours(page, dagster_dev):
    visit(page, f"{dagster_dev.url}/assets/core/unified_profiles?view=lineage&lineageScope=neighbors")
    for neighbour in ("record_profiles", "purchasers_30d"):
        page.get_by_text(neighbour, exact=True).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "02_unified_profiles_lineage.png"), full_page=True)
    shows_no_error(page)


def test_a_materialization_launched_from_the_ui_succeeds(page, dagster_dev):
    visit(page, f"{dagster_dev.url}/assets/staging/exchange_rates")
    page.locator("button").filter(has_text=re.compile(r"^\s*Materialize\s*$")).first.click()
    page.get_by_text("Launched run").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "03_materialization_launched.png"), full_page=True)

    def materialized():
        node = dagster_dev.graphql("""{ assetNodes(assetKeys: [{path: ["staging", "exchange_rates"]}]) {
            assetMaterializations(limit: 1) { runId } } }""")["assetNodes"][0]
        return node["assetMaterializations"]

    dagster_dev.wait_for("the materialization launched from the UI", materialized)
    page.reload()
    page.get_by_text("Latest materialization").first.wait_for()
    page.get_by_text("Row count").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "04_exchange_rates_materialized.png"), full_page=True)
    shows_no_error(page)
