"""What must fit a 1366 x 768 page (issue 24), in Debian's Chromium against a real server: the Memory tab's
"Largest batch" table does not scroll sideways and its batch ticks do not overlap with batch 17 chosen (beside the
plot's 16); the Latency tab's history table does not scroll sideways (extra columns off and on) and its model
column is wider than its longest label as Chromium draws it in the app's font. The history is seeded through
`analysis.latency.history.save_results` (made-up figures) into a server of its own."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest

from spinescope.analysis.latency.history import save_results
from spinescope.analysis.latency.results import LatencyResult
from page_helpers import TABLE_WIDTHS, assert_no_traceback, open_app, open_tab, overlapping, type_into, wait_until_idle

SMALL = {"width": 1366, "height": 768}
APP = Path(__file__).resolve().parents[2] / "app" / "main.py"
LABELS = ("Mobile SpineNet-49XS (current)", "SpineNet-49 (current)", "ResNet-50-FPN")
CELL_PADDING = 2 * 8  # the grid's text inset on each side of a cell


def table_scrolls(page, key: str) -> bool:
    """Whether the table `key` scrolls sideways, once every grid on the page is drawn."""
    page.wait_for_timeout(1000)  # a grid being redrawn may scroll for a moment
    seen = dict(page.wait_for_function(TABLE_WIDTHS).json_value())
    assert key in seen, seen
    return seen[key]


def tick_boxes(page, key: str) -> list:
    """The x tick labels of plot `key` as [left, top, right, bottom, text] (page pixels), once drawn."""
    page.locator(f".st-key-{key}").scroll_into_view_if_needed()
    page.wait_for_timeout(1000)  # let plotly finish its redraws
    return page.wait_for_function(f"""() => {{
        const ticks = [...document.querySelectorAll('.st-key-{key} .xtick text')];
        if (!ticks.length) return null;
        return ticks.map(e => {{ const r = e.getBoundingClientRect();
                                return [r.left, r.top, r.right, r.bottom, e.textContent]; }}); }}""").json_value()


def test_the_memory_fit_table_and_the_batch_ticks_fit_at_1366(browser, server):
    context = browser.new_context(viewport=SMALL)
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        open_app(page, server)
        open_tab(page, "Memory")
        type_into(page, "memory_batch", "17")
        expect(page.get_by_text("batch 17,").first).to_be_visible()
        assert table_scrolls(page, "memory_fit_table") is False
        ticks = tick_boxes(page, "memory_batch_plot")
        assert "16" in [text for *_, text in ticks], ticks
        assert overlapping(ticks) == [], ticks
        assert_no_traceback(page)
    finally:
        context.close()


@pytest.fixture
def own_server(server, tmp_path, monkeypatch):
    """A server like `server` on an empty SPINESCOPE_HOME of its own, also set in this process (the history API
    and AppTest use it)."""
    home = tmp_path / "home"
    monkeypatch.setenv("SPINESCOPE_HOME", str(home))
    app = type(server)(home).start()
    yield app
    app.stop()


def seed_history() -> None:
    results = [LatencyResult(
        label=label, spec_name=label, spec_hash=f"{index:016x}", input_size=64, head="none", batch=1, device="cpu",
        device_name="Test CPU", precision="fp32", dtype="float32", memory_format="contiguous", fold_bn=False,
        compiled=False, threads=1, iterations=3, warmup=1, median_ms=30.0 + index, p10_ms=29.0, p90_ms=35.0,
        mean_ms=31.0, min_ms=28.0, throughput=30.0, peak_memory_bytes=3 * 2 ** 20, weight_bytes=2 * 2 ** 20,
        activation_bytes=2 ** 20, estimated_memory_bytes=3 * 2 ** 20, build_s=0.1, compile_s=None, bn_folded=0,
        bn_remaining=10, ratio_to_first=1.0, torch_version="2.0.0+cpu", environment={}, run_id="run-1",
        created_at=f"2026-01-05T10:00:0{index}+00:00", samples_ms=[30.0]) for index, label in enumerate(LABELS)]
    _, warning = save_results(results)
    assert warning is None


def model_column_width() -> int:
    """The width (pixels) the page gives the history table's model column, read from the element the app sends."""
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.run()
    app.session_state["tab"] = "Latency"
    app.run()
    assert not app.exception
    (history,) = [frame for frame in app.dataframe if "spec" in frame.value and len(frame.value) == len(LABELS)]
    return json.loads(history.proto.columns)["model"]["width"]


def test_the_latency_history_table_fits_at_1366_with_whole_model_labels(browser, own_server):
    seed_history()
    context = browser.new_context(viewport=SMALL)
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        open_app(page, own_server)
        open_tab(page, "Latency")
        expect(page.get_by_text("History: median latency over time")).to_be_visible()
        assert table_scrolls(page, "latency_history_table") is False
        # Each label as Chromium draws it in the grid's font (Streamlit's Source Sans at 14 px), loaded by the page.
        widths = page.evaluate("""async labels => { await document.fonts.load('14px "Source Sans"');
            const context = document.createElement('canvas').getContext('2d');
            context.font = '14px "Source Sans"';
            return labels.map(label => context.measureText(label).width); }""", list(LABELS))
        assert min(widths) > 50, widths  # the font is there (not an empty measure)
        assert max(widths) + CELL_PADDING <= model_column_width(), widths
        page.locator(".st-key-latency_history_table_more label").click()
        wait_until_idle(page)
        assert table_scrolls(page, "latency_history_table") is False
        assert_no_traceback(page)
    finally:
        context.close()
