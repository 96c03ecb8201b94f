"""What must fit a 1366 x 768 page, in Debian's Chromium against a real server: a tiny sweep's tables in the
Sweeps tab do not scroll sideways (with their extra columns off and on), and the Latency tab's history plot labels
its time axis readably (non-empty, non-overlapping ticks in formats that suit the span) for results seconds apart
and days apart. The history is seeded through `analysis.latency.history.save_results` into a server of its own
(an empty temporary SPINESCOPE_HOME), never by measuring."""
from __future__ import annotations

import re
import tempfile
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from spinescope.analysis.latency.history import save_results
from spinescope.analysis.latency.results import LatencyResult
from page_helpers import assert_no_traceback, open_app, open_tab, wait_until_idle
from page_helpers import TABLE_WIDTHS, overlapping
from page_helpers import field, type_into

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
        expect(page.get_by_text("Last sweep (1 point,")).to_be_visible(timeout=240_000)
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


# ---------------------------------------------------------------------------------------------------------------
# The Latency tab's history plot: its time ticks

# The history plot's x tick labels as [left, top, right, bottom, [lines]] (page pixels; plotly writes a "<br>" as
# one <tspan class="line"> per line) and the box of its canvas; null until the plot is drawn.
TIME_TICKS = """() => { const root = document.querySelector('.st-key-latency_history_plot .js-plotly-plot');
  if (!root || !root.querySelector('.xtick text')) return null;
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  return {ticks: [...root.querySelectorAll('.xtick text')].map(e => {
            const lines = [...e.querySelectorAll('tspan.line')].map(t => t.textContent);
            return [...box(e), lines.length ? lines : [e.textContent]]; }),
          canvas: box(root.querySelector('.main-svg'))}; }"""


@pytest.fixture
def own_server(server, tmp_path, monkeypatch):
    """A server like `server` (the same class) on an empty SPINESCOPE_HOME of its own, also set in this process so
    that the history API writes there."""
    home = tmp_path / "home"
    monkeypatch.setenv("SPINESCOPE_HOME", str(home))
    app = type(server)(home).start()
    yield app
    app.stop()


def seed_history(times: list[datetime]) -> None:
    """Stores two made-up results (figures chosen by hand, nothing measured) per time, in the order given, through
    the history API."""
    results = [LatencyResult(
        label=label, spec_name=label, spec_hash="h-" + label, input_size=64, head="none", batch=1, device="cpu",
        device_name="Test CPU", precision="fp32", dtype="float32", memory_format="contiguous", fold_bn=False,
        compiled=False, threads=1, iterations=3, warmup=1, median_ms=median, p10_ms=median * 0.9,
        p90_ms=median * 1.2, mean_ms=median * 1.05, min_ms=median * 0.8, throughput=1e3 / median,
        peak_memory_bytes=3 * 2 ** 20, weight_bytes=2 * 2 ** 20, activation_bytes=2 ** 20,
        estimated_memory_bytes=3 * 2 ** 20, build_s=0.1, compile_s=None, bn_folded=0, bn_remaining=10,
        ratio_to_first=1.0, torch_version="2.0.0+cpu", environment={"device_name": "Test CPU", "threads": 1},
        run_id=f"run-{index}", created_at=when.isoformat(), samples_ms=[median])
        for index, when in enumerate(times)
        for label, median in (("SpineNet-49", 30.0 + index), ("ResNet-50-FPN", 40.0 + index))]
    stored, warning = save_results(results)
    assert warning is None and all(result.history_id for result in stored)


def readable_ticks(page: Page, name: str) -> list[list[str]]:
    """Returns the lines of each of the history plot's x tick labels, left to right, once drawn, after checking
    that there are at least three, none empty, none overlapping another and all inside the canvas."""
    page.locator(".st-key-latency_history_plot").scroll_into_view_if_needed()
    page.wait_for_timeout(1000)  # let plotly finish its redraws
    shown = page.wait_for_function(TIME_TICKS).json_value()
    page.screenshot(path=str(SHOTS / f"history-ticks-{name}.png"))
    ticks = sorted(shown["ticks"])
    labels = [lines for *_, lines in ticks]
    assert len(ticks) >= 3 and all(lines and all(line.strip() for line in lines) for lines in labels), labels
    assert overlapping([[*box, " ".join(lines)] for *box, lines in ticks]) == [], labels
    left, top, right, bottom = shown["canvas"]
    assert all(left <= x0 and x1 <= right and top <= y0 and y1 <= bottom for x0, y0, x1, y1, _ in ticks), shown
    return labels


def test_the_history_plots_time_ticks_read_well_seconds_and_days_apart(browser, own_server):
    """Results 3 s apart: the ticks are times of day with seconds, in order, within the results' span, and name
    the day (only that day) once; a point's hover label gives its time to the second. Then results days apart as
    well: the ticks are days (no time of day), in order, one per day at most, within the span, each year named
    where it starts. Every tick label is non-empty, overlaps no other and lies inside the plot."""
    context = browser.new_context(viewport=SMALL)
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        start = datetime(2026, 1, 5, 10, 20, 0, tzinfo=timezone.utc)
        seed_history([start + timedelta(seconds=3 * step) for step in range(5)])  # 10:20:00 to 10:20:12
        open_app(page, own_server)
        open_tab(page, "Latency")
        labels = readable_ticks(page, "seconds")
        assert all(re.fullmatch(r"\d\d:\d\d:\d\d", lines[0]) for lines in labels), labels
        times = [datetime.combine(start.date(), time.fromisoformat(lines[0]), timezone.utc) for lines in labels]
        assert times == sorted(set(times)), labels
        assert start - timedelta(seconds=5) <= times[0] and times[-1] <= start + timedelta(seconds=17), labels
        assert {line for lines in labels for line in lines[1:]} == {f"{start:%b} {start.day}, {start.year}"}, labels
        # Hovering the earliest point shows its full time, to the second.
        box = page.locator(".st-key-latency_history_plot .scatterlayer .trace path.point").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expect(page.locator(".st-key-latency_history_plot .hoverlayer")).to_contain_text(f"{start:%Y-%m-%d %H:%M:%S}")

        earliest = start - timedelta(days=20)  # 2025-12-16
        seed_history([earliest, start - timedelta(days=13), start - timedelta(days=6), start - timedelta(days=2)])
        page.reload()
        open_tab(page, "Latency")
        labels = readable_ticks(page, "days")
        days, year = [], None
        for lines in labels:
            assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}", lines[0]), labels  # a day, no time of day
            if len(lines) > 1:
                assert len(lines) == 2 and re.fullmatch(r"\d{4}", lines[1]), labels
                year = int(lines[1])
            assert year is not None, labels  # the first tick names its year
            days.append(datetime.strptime(f"{lines[0]} {year}", "%b %d %Y").replace(tzinfo=timezone.utc))
        assert days == sorted(set(days)), labels  # in order, one label per day at most
        assert earliest - timedelta(days=3) <= days[0] and days[-1] <= start + timedelta(days=3), labels
        assert [day.year for day in days if day.year != days[0].year] != [], labels  # 2025 and 2026 both named
        assert_no_traceback(page)
    finally:
        context.close()
