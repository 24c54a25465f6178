"""The README's screenshots: the newest drift report, the index and the Evidently dashboard, taken in
headless Chromium from the state `make demo` leaves. Rerun with `make screenshots` after `make demo`.

    python docs/screenshots.py [--home .pigeonhole] [--out docs/images]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from pigeonhole.core.settings import Settings
from pigeonhole.serving.process import free_port, wait_until_up

VIEWPORT = {"width": 1300, "height": 1000}


def newest_report(reports: Path) -> Path:
    """The newest report of a run that found drift (the most to look at), else the newest report."""
    runs = sorted(reports.glob("*/report.html"), reverse=True)
    if not runs:
        sys.exit(f"no drift reports in {reports}: run `make demo` first")
    drifted = [run for run in runs if '"decision": "drift"' in (run.parent / "summary.json").read_text()]
    return (drifted or runs)[0]


def dashboard(page: Page, workspace: Path, out: Path) -> None:
    """`evidently ui` over the workspace, as the README starts it; the project's dashboard."""
    port = free_port()
    evidently = Path(sys.executable).with_name("evidently")
    command = [str(evidently), "ui", "--workspace", str(workspace), "--port", str(port)]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as server:
        try:
            wait_until_up(f"http://127.0.0.1:{port}/", process=server)
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.get_by_text("listing-category").first.click()
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(2000)  # the plots draw after the data arrives
            page.screenshot(path=out / "evidently-dashboard.png", full_page=True)
        finally:
            server.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path(".pigeonhole"))
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    reports = Path(Settings(home=args.home).reports_location)
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(newest_report(reports).as_uri(), wait_until="load")
        page.screenshot(path=args.out / "drift-report.png")
        page.goto((reports / "index.html").as_uri(), wait_until="load")
        page.screenshot(path=args.out / "drift-index.png", full_page=True)
        dashboard(page, reports / "workspace", args.out)
        browser.close()
    print(f"screenshots in {args.out}: drift-report.png, drift-index.png, evidently-dashboard.png")


if __name__ == "__main__":
    main()
