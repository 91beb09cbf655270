"""End to end 2: Debian's headless Chromium, driven by Playwright, on the same webserver as test 1.

Playwright's own browser download cannot work on these machines, so the test drives the
system `chromium` (`executable_path`) with a fresh profile and no background networking.
Screenshots land in `tests/artifacts/` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import re
import shutil
import urllib.parse
from pathlib import Path

import pytest

from tests.default_instance import CRM_WRITEBACKS_KEY, recordings_updated_sensor

from .conftest import BACKFILL_PARTITIONS, SIRO_ASSET_PATHS

# Every asset the graph draws: the tables, and the CRM delivery (not backfilled here).
DRAWN_PATHS = [*SIRO_ASSET_PATHS, CRM_WRITEBACKS_KEY.path]

# Both UI test modules share one worker (tests/conftest.py) and so one server.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GROUPS = ("siro_ingest", "siro_crm", "siro_conversations", "siro_writebacks")
UI_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    """A page in a headless Chromium with a fresh user-data-dir."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`; "
            ".ci/run does this). Playwright's own browser download cannot work here."
        )
    # A dev dependency: its absence is a broken install, not a reason to skip.
    from playwright import sync_api
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            # Tall enough that the expanded asset graph fits: the graph only draws nodes in view.
            viewport={"width": 1800, "height": 2000},
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()


def _shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


@pytest.fixture
def page(request, browser_page):
    """The browser page; when the test fails, what it showed is saved as failure.png."""
    yield browser_page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        _shot(browser_page, "failure")


def test_the_ui_draws_every_asset_partitions_and_check_results(backfilled_ui, page):
    from playwright.sync_api import expect

    ui = backfilled_ui.ui

    # The asset graph, every group expanded (the UI's own `expanded` URL state): each siro
    # asset is drawn with its status loaded (its asset-check summary).
    expanded = ",".join(f"global@global:{group}" for group in GROUPS)
    page.goto(f"{ui.url}/asset-groups?{urllib.parse.urlencode({'expanded': expanded})}")
    for path in DRAWN_PATHS:
        page.get_by_text(path[-1], exact=True).first.wait_for(state="visible")
    for group in GROUPS:
        assert page.get_by_text(group, exact=True).first.is_visible(), group
    check_summaries = page.get_by_text(re.compile(r"^\d+ / \d+ Passed$"))
    expect(check_summaries).to_have_count(len(DRAWN_PATHS), timeout=UI_TIMEOUT_MS)
    expect(page.get_by_text("Loading...")).to_have_count(0, timeout=UI_TIMEOUT_MS)
    _shot(page, "asset-graph")

    # One asset's partitions: the two backfilled days materialized, one opened with its metadata.
    page.goto(f"{ui.url}/assets/siro/recordings?view=partitions&partition={BACKFILL_PARTITIONS[0]}")
    page.get_by_text(f"Materialized ({len(BACKFILL_PARTITIONS)})").wait_for(state="visible")
    page.get_by_text("api_requests", exact=True).first.wait_for(state="visible")
    _shot(page, "recordings-partitions")

    # The same asset's numeric metadata, plotted (Overview > Metadata > Events > Plots).
    page.goto(f"{ui.url}/assets/siro/recordings?view=overview")
    page.get_by_role("button", name="Plots").click()
    # By event time: the partitions axis only spans the latest days, and March is long ago.
    page.get_by_role("button", name="Events").last.click()
    page.get_by_text("Columns", exact=True).first.click()  # fold the long column list away
    for label in ("api_requests", "api_429s", "duration_seconds"):
        page.get_by_text(label, exact=True).first.wait_for(state="visible")
    _shot(page, "recordings-plots")

    # An asset check's result, with its metadata.
    page.goto(f"{ui.url}/assets/siro/recordings?view=checks&checkDetail=id_unique")
    page.get_by_text("Every recording id appears once").first.wait_for(state="visible")
    page.get_by_text("Passed", exact=True).first.wait_for(state="visible")
    page.get_by_text("offending_rows", exact=True).first.wait_for(state="visible")
    _shot(page, "check-id-unique")

    # The sensor and both schedules are listed, and the sensor's page shows its description.
    page.goto(f"{ui.url}/automation")
    for name in ("recordings_updated_sensor", "nightly_recordings_schedule", "partition_freshness_schedule"):
        page.get_by_text(name, exact=True).first.wait_for(state="visible")
    page.get_by_text("Standard sensor").wait_for(state="visible")
    _shot(page, "automation")
    page.goto(f"{ui.url}/locations/siro_assets/sensors/{recordings_updated_sensor.name}")
    page.get_by_text(recordings_updated_sensor.description).wait_for(state="visible")
    _shot(page, "sensor")

    shutil.copy(ui.workdir / "webserver.log", ARTIFACTS / "webserver.log")
