"""The HTML scorecard in a real browser: headless Chromium over the DevTools protocol.

Skipped when ``chromium`` is not installed (``.ci/run`` installs it when it can).
Set ``REPORT_SCREENSHOTS`` to a folder to keep the screenshots (CI: docs/report).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from okr_sync.sync.delivery.render.report import render_html_report
from support.chromium import CHROMIUM, Browser
from support.html import parse_strict
from support.reports import report_data

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH "
                                                 "(apt-get install chromium)"),
]

HEIGHT = 2000

_IDS = """(() => {
  const ids = a => [...document.querySelectorAll(`[${a}]`)].map(e => e.getAttribute(a));
  return {objectives: ids('data-objective'), krs: ids('data-kr'),
          perspectives: ids('data-perspective'), kpis: ids('data-kpi')};
})()"""

_CHARTS = """Object.fromEntries([...document.querySelectorAll('section[data-kr]')].map(s => {
  const svg = s.querySelector('svg.burnup');
  return [s.dataset.kr, [svg.querySelector('polyline.actual').points.numberOfItems,
                         svg.querySelectorAll('circle.pt').length]];
}))"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM is not None
    opened = Browser(CHROMIUM)
    try:
        yield opened
    finally:
        opened.close()


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@pytest.mark.parametrize("width", [1400, 400])
def test_report_in_chromium_given_width_renders_everything_without_console_errors(
    browser: Browser, tmp_path: Path, width: int
) -> None:
    data = report_data()
    html = render_html_report(data)
    parse_strict(html)
    page = tmp_path / "report.html"
    page.write_text(html, "utf-8")

    browser.open(page.as_uri(), width, HEIGHT)

    assert browser.console_problems() == []
    assert browser.evaluate("innerWidth") == width
    # Readable at this width: nothing wider than the viewport forces sideways scrolling.
    assert browser.evaluate("document.documentElement.scrollWidth") <= width
    shown = browser.evaluate(_IDS)
    card = data.scorecard
    assert set(shown["objectives"]) == {o.id for o in card.objectives}
    assert sorted(shown["krs"]) == sorted(k.id for k in card.key_results())
    assert shown["perspectives"] == [p.id for p in card.perspectives]
    assert sorted(shown["kpis"]) == sorted(k.id for k in card.kpis)
    charts = browser.evaluate(_CHARTS)
    assert charts == {kr: [len(rows), len(rows)] for kr, rows in data.history.items()}

    png = browser.screenshot(width, HEIGHT)
    assert _png_size(png) == (width, HEIGHT)
    folder = Path(os.environ.get("REPORT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"report-{width}.png").write_bytes(png)


def test_console_problems_given_a_page_that_errs_reports_them(browser: Browser,
                                                                tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><title>x</title><script>console.error('boom');nope()"
                    "</script>", "utf-8")
    browser.open(page.as_uri(), 400, 400)
    problems = browser.console_problems()
    assert len(problems) == 2 and "boom" in problems[0]
