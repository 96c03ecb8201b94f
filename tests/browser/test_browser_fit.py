"""What must fit a 1366 x 768 page, in Debian's Chromium against a real server: a tiny sweep's tables in the
Sweeps tab do not scroll sideways (with their extra columns off and on), and the Latency tab's history plot labels
its time axis readably (non-empty, non-overlapping ticks in formats that suit the span) for results seconds apart
and days apart. The history is seeded through `analysis.latency.history.store_results` into a server of its own
(an empty temporary SPINESCOPE_HOME), never by measuring."""
from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from test_browser_app import assert_no_traceback, open_app, open_tab, wait_until_idle
from test_browser_edit_loop import TABLE_WIDTHS
from test_browser_memory_sweep import field, type_into

SHOTS = Path(tempfile.gettempdir())
SMALL = {"width": 1366, "height": 768}


def _table_scrolls(page: Page) -> dict:
    """Returns {table key: whether it scrolls sideways} for the tables drawn on the page, once they have settled
    (a grid being redrawn may scroll for a moment)."""
    try:
        page.wait_for_function(f"() => {{ const t = ({TABLE_WIDTHS})(); "
                               "return t !== null && t.length > 0 && t.every(([key, scrolls]) => !scrolls); }",
                               timeout=5_000)
    except PlaywrightTimeout:
        pass
    return dict(page.wait_for_function(TABLE_WIDTHS).json_value())


def test_a_tiny_sweeps_tables_fit_the_page_at_1366_by_768(browser, server):
    """One point (the open spec at 64 px, one timed call): the points table fits without scrolling sideways, with
    its extra columns off and on."""
    context = browser.new_context(viewport=SMALL)
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        open_app(page, server)
        open_tab(page, "Sweeps")
        models = page.locator(".st-key-sweep_models")
        expect(models.get_by_text("ResNet-50-FPN")).to_be_visible()
        # Only the open spec: Backspace in the box removes the last chip (ResNet-50-FPN, the default's second).
        models.locator("input").click()
        models.locator("input").press("Backspace")
        page.keyboard.press("Escape")
        wait_until_idle(page)
        expect(models.get_by_text("ResNet-50-FPN")).to_have_count(0)
        for key, value in (("sweep_sizes", "64"), ("sweep_iters", "1"), ("sweep_warmup", "0"),
                           ("sweep_threads", "1")):
            type_into(page, key, value)
        expect(page.get_by_text("1 point(s), all timed interleaved")).to_be_visible()
        page.get_by_role("button", name="Start sweep").click()
        expect(page.get_by_text("Last sweep (1 points")).to_be_visible(timeout=240_000)
        expect(field(page, "sweep_sizes")).to_have_value("64")
        for toggle in ("", "sweep_points_table_more"):
            if toggle:
                page.locator(f".st-key-{toggle} label").click()
                wait_until_idle(page)
            seen = _table_scrolls(page)
            page.screenshot(path=str(SHOTS / f"sweep-tables-1366{'-more' if toggle else ''}.png"), full_page=True)
            assert "sweep_points_table" in seen, seen
            assert [key for key, scrolls in seen.items() if scrolls] == [], (toggle, seen)
        assert_no_traceback(page)
    finally:
        context.close()
