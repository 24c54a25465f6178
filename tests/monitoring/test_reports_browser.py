"""The drift report and the index as a data scientist opens them: in a real browser (Debian's Chromium,
driven by Playwright), from files, with nothing fetched from the network and no script errors."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

from pigeonhole.core.settings import Settings
from pigeonhole.model.synthetic import generate
from pigeonhole.monitoring.compare import FeedbackQuality, compare, decide, feedback_pairs, quality_snapshot
from pigeonhole.monitoring.reports import store_run
from pigeonhole.monitoring.result import DriftResult, RunSource

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="needs Chromium (Debian: apt-get install chromium; make test installs it where it can)",
)


def _traffic(rows: int, seed: int, drift: float) -> pd.DataFrame:
    listings = generate(rows, seed=seed, drift=drift)
    category = listings["category_path"].str.split(" > ").str[0]
    return listings.assign(
        predicted_category=category,
        top_score=0.9 - 0.3 * drift,
        chosen_category=category,
        top_category=category.where(listings.index % 5 > 0, "Other"),  # one answer in five is wrong
    )


def _run(settings: Settings, version: str, seed: int, drift: float, source: RunSource) -> DriftResult:
    """One stored drift run of synthetic traffic against a synthetic reference: no model needed."""
    reference, current = _traffic(800, seed, 0.0), _traffic(600, seed + 1, drift)
    thresholds = {"title": 3.0, "description": 3.0, "predicted_category": 0.1, "top_score": 0.1, "price": 0.1}
    comparison = compare(reference, current, thresholds, settings.drift_share)
    pairs = feedback_pairs(current)
    quality = FeedbackQuality(len(pairs), float((pairs["target"] == pairs["prediction"]).mean()), 0.9)
    now = datetime.now(UTC)
    decision, reasons = decide(settings, comparison, quality)
    result = DriftResult(
        decision=decision,
        reasons=reasons,
        since=(now - timedelta(hours=1)).isoformat(),
        until=now.isoformat(),
        model_name=settings.model_name,
        model_version=version,
        current_rows=len(current),
        source=source,
        reference_rows=len(reference),
        columns=comparison.columns,
        drift_share=comparison.drift_share,
        feedback_rows=quality.rows,
        feedback_accuracy=quality.accuracy,
        reference_accuracy=quality.reference_accuracy,
        trigger="trigger=none: report only",
    )
    store_run(settings, result, comparison.snapshot, quality_snapshot(pairs))
    return result


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[DriftResult]]:
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    runs = [_run(settings, "1", 1, 0.0, RunSource.schedule), _run(settings, "2", 3, 1.0, RunSource.demo)]
    return Path(settings.reports_location), runs


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Visit:
    """A page that records every console error and refuses (and records) every request off the disk."""

    def __init__(self, browser: Browser) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1300, "height": 900})
        self.errors: list[str] = []
        self.external: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.route("**/*", self._route)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _route(self, route: Route) -> None:
        if route.request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def open(self, path: Path) -> Page:
        self.page.goto(path.as_uri(), wait_until="load")
        return self.page


def test_the_report_opens_on_its_summary_then_evidently(
    reports: tuple[Path, list[DriftResult]], browser: Browser
) -> None:
    _, (first, second) = reports
    visit = Visit(browser)
    page = visit.open(Path(second.report_html or ""))
    summary = page.locator("#summary")
    assert summary.is_visible() and summary.bounding_box()["y"] < 50, "the summary is the first thing seen"  # type: ignore[index]
    text = summary.inner_text()
    assert "Drift" in text and f"{second.model_name} v2" in text and "trigger=none: report only" in text
    assert f"{second.feedback_accuracy:.3f}" in text and "0.900" in text and "600 predictions" in text
    drifted = [name for name, score in second.columns.items() if score.drifted]
    first_row = summary.locator("table").nth(1).locator("tr").nth(1).inner_text()
    assert drifted and first_row.split()[0] in drifted, "drifted columns come first"
    page.locator(f"[id^=root_] >> text=Drift in column '{drifted[0]}'").first.wait_for(timeout=20_000)
    assert page.locator("[id^=root_]").inner_text().count("Drift in column") >= len(second.columns)
    page.get_by_role("link", name="Previous report").click()
    assert page.url.endswith(f"{first.run}/report.html")
    page.get_by_role("link", name="All drift runs").click()
    assert page.url.endswith("index.html")
    assert visit.errors == [] and visit.external == []


def test_the_index_sorts_and_filters_the_history(
    reports: tuple[Path, list[DriftResult]], browser: Browser
) -> None:
    root, (first, second) = reports
    visit = Visit(browser)
    assert first.decision != second.decision
    page = visit.open(root / "index.html")
    rows = page.locator("#runs tbody tr")
    assert rows.count() == 2 and "demo" in rows.nth(0).inner_text(), "newest first"
    assert page.locator("#trend circle").count() == 4, "drift share and feedback accuracy of both runs"
    page.select_option("#filter-version", "v1")
    assert [rows.nth(i).is_visible() for i in range(2)] == [False, True]
    page.select_option("#filter-version", "")
    page.select_option("#filter-decision", second.decision.value)
    assert rows.nth(0).is_visible() and not rows.nth(1).is_visible()
    page.select_option("#filter-decision", "")
    page.locator("#runs th", has_text="run (UTC)").click()
    assert "schedule" in rows.nth(0).inner_text(), "sorted oldest first"
    assert visit.errors == [] and visit.external == []
