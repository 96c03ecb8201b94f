"""What a user must not lose or be misled by, in Debian's Chromium against a real server: the Latency settings
survive a run and a refresh, a refused block table keeps its edits and names the column as labelled, and the
current Model Garden's 16-block list imports as pasted with a note; no table scrolls sideways at 1366 x 768."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from spinescope.analysis.counting import analyze
from spinescope.app.units import billions
from reference_counts import SPINENET_49 as SPINENET_49_TUPLES
from spinescope.spinenet.builtins import load_builtin
from page_helpers import (TABLE_WIDTHS, assert_no_traceback, backbone_macs, choose, level_label, open_app,
                          open_tab, overlapping, stored_spec, wait_until_idle)

SHOTS = Path(tempfile.gettempdir())


def number(page: Page, key: str):
    return page.locator(f".st-key-{key} input")


def set_number(page: Page, key: str, value: int) -> None:
    field = number(page, key)
    field.fill(str(value))
    field.press("Enter")
    wait_until_idle(page)
    expect(field).to_have_value(str(value))


def test_latency_settings_survive_a_run_and_a_refresh(page, server):
    open_app(page, server)
    open_tab(page, "Latency")
    expect(page.get_by_text("Estimated time:")).to_be_visible()
    # Option labels are shown literally: the spec's name without Markdown escapes.
    expect(page.locator(".st-key-latency_models").get_by_text("current spec (SpineNet-49)")).to_be_visible()
    settings = {"latency_size": 64, "latency_iters": 3, "latency_warmup": 1, "latency_threads": 1}
    for key, value in settings.items():
        set_number(page, key, value)
    page.get_by_role("button", name="Measure latency").click()
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    for key, value in settings.items():  # while it runs: the disabled form shows what is measured
        expect(number(page, key)).to_have_value(str(value))
    page.screenshot(path=str(SHOTS / "edit-loop-latency-running.png"), full_page=True)
    expect(page.get_by_text("This run")).to_be_visible(timeout=180_000)
    for key, value in settings.items():
        expect(number(page, key)).to_have_value(str(value))
    open_tab(page, "Explore")
    open_tab(page, "Latency")
    page.reload()
    expect(number(page, "latency_size")).to_be_visible(timeout=60_000)
    for key, value in settings.items():
        expect(number(page, key)).to_have_value(str(value))
    page.screenshot(path=str(SHOTS / "edit-loop-latency-after.png"), full_page=True)
    assert_no_traceback(page)


def test_a_running_measurement_follows_a_refresh_and_stays_in_its_workspace(page, server, browser):
    """A refresh while a latency run goes finds it still running (progress and Cancel) and then its results; a
    browser on another workspace sees no run and may start its own."""
    open_app(page, server)
    open_tab(page, "Latency")
    expect(page.get_by_text("Estimated time:")).to_be_visible()
    for key, value in {"latency_size": 64, "latency_iters": 40, "latency_warmup": 1, "latency_threads": 1}.items():
        set_number(page, key, value)
    page.get_by_role("button", name="Measure latency").click()
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Cancel")).to_be_visible(timeout=60_000)  # still running after the refresh
    expect(page.locator("[data-testid='stProgress']")).to_be_visible()
    other = browser.new_context()
    try:
        elsewhere = other.new_page()
        open_app(elsewhere, server)  # a new workspace
        open_tab(elsewhere, "Latency")
        expect(elsewhere.get_by_role("button", name="Measure latency")).to_be_enabled()
        expect(elsewhere.get_by_role("button", name="Cancel")).to_have_count(0)
    finally:
        other.close()
    expect(page.get_by_text("This run", exact=True)).to_be_visible(timeout=180_000)
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    # Its tables fit 1366 px without scrolling sideways, also with their extra columns on.
    page.set_viewport_size({"width": 1366, "height": 768})
    for toggle in ("", "latency_results_table_more", "latency_history_table_more"):
        if toggle:
            page.locator(f".st-key-{toggle} label").click()
            wait_until_idle(page)
        page.wait_for_timeout(1000)
        widths = dict(page.wait_for_function(TABLE_WIDTHS).json_value())
        assert {"latency_results_table", "latency_history_table"} <= set(widths), widths
        assert not any(widths.values()), (toggle, widths)
    assert_no_traceback(page)


def test_a_refused_block_table_keeps_its_edits_and_names_the_column(page, server):
    open_app(page, server)
    open_tab(page, "Edit")
    page.get_by_text("Block table (edit the whole list)").click()
    grid = page.locator(".stDataFrame").first
    expect(grid).to_be_visible()
    wait_until_idle(page)
    # Row 1 ('b2'): "parent 2" (the 5th column) becomes b9, a later block: click the row's first cell, move right
    # four cells with the keyboard and type, as a keyboard user does.
    canvas = grid.get_by_test_id("data-grid-canvas")
    canvas.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    box = canvas.bounding_box()
    # "parent 2" is the 5th of six columns (about three quarters across); row 1 is just under the 35 px header.
    page.mouse.dblclick(box["x"] + box["width"] * 0.745, box["y"] + 35 + 17)
    editor = page.locator("#portal textarea, .gdg-input textarea, textarea.gdg-input").first
    expect(editor).to_be_visible()
    editor.fill("b9")
    editor.press("Enter")
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Apply table").click()
    refusal = page.get_by_text("Edit rejected: row 1 ('b2'): column \"parent 2\": 'b9' does not exist")
    expect(refusal).to_be_in_viewport()  # beside the button just pressed, not at the top of a long tab
    page.screenshot(path=str(SHOTS / "edit-loop-table-refused.png"), full_page=True)
    # The edit is still in the table: a second Apply (the note of the first is gone after any rerun) is refused the
    # same way; a table that had been reset to the spec would be accepted silently.
    page.get_by_role("button", name="Apply table").click()
    wait_until_idle(page)
    expect(page.get_by_text("Edit rejected: row 1 ('b2'): column \"parent 2\"")).to_be_visible()
    assert stored_spec(server, page) == load_builtin("spinenet-49")
    assert_no_traceback(page)


def test_the_model_garden_16_block_list_imports_as_pasted(page, server):
    open_app(page, server)
    open_tab(page, "Import / export")
    text = "[\n" + "".join(f"    {t!r},\n" for t in SPINENET_49_TUPLES) + "    (2, 'bottleneck', (2, 13), True),\n]"
    expect(page.get_by_text("A tuple list gets the open spec's scaling (SpineNet-49)")).to_be_visible()
    page.locator(".st-key-paste_text textarea").fill(text)
    page.locator(".st-key-paste_text textarea").press("Control+Enter")
    wait_until_idle(page)
    page.get_by_role("button", name="Import pasted text").click()
    expect(page.get_by_text("Imported 16 blocks from pasted text with the scaling of SpineNet-49")).to_be_visible()
    expect(page.get_by_text("is an output in the list, but this spec's outputs are P3-P7")).to_be_visible()
    page.screenshot(path=str(SHOTS / "edit-loop-16-blocks.png"), full_page=True)
    open_tab(page, "Explore")
    # The extra block feeds nothing: SpineNet-49's MACs, computed by the library on the 15-block built-in.
    expect(backbone_macs(page)).to_have_text(billions(analyze(load_builtin("spinenet-49"), 640).backbone_macs))
    assert_no_traceback(page)


def test_tables_fit_the_page_at_1366_by_768(browser, server):
    """No table scrolls sideways at 1366 x 768: the per-block and receptive-field tables (also with their extra
    columns on), the Compare table (also with its extra columns) and the Edit tab's change table."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        open_app(page, server)
        open_tab(page, "Edit")
        choose(page, "edit_block_box", "b7")
        expect(page.locator(".st-key-edit_level input")).to_have_value(level_label(4))  # the rerun has finished
        wait_until_idle(page)
        choose(page, "edit_level", level_label(5))
        expect(page.get_by_text("relevelled b7")).to_be_visible()
        seen = {}
        for tab, toggles in (("Edit", ()), ("Explore", ("block_table_more",)), ("Receptive fields (P3–P7)", ()),
                             ("Compare", ("compare_table_more",))):
            open_tab(page, tab)  # the receptive fields: a tab below Explore's graph
            wait_until_idle(page)
            for toggle in ("",) + toggles:
                if toggle:
                    page.locator(f".st-key-{toggle} label").click()
                    wait_until_idle(page)
                try:  # a grid being redrawn may scroll for a moment: give it a few seconds to settle
                    page.wait_for_function(f"() => {{ const t = ({TABLE_WIDTHS})(); "
                                           "return t !== null && t.every(([key, scrolls]) => !scrolls); }",
                                           timeout=5_000)
                except PlaywrightTimeout:
                    pass
                for key, scrolls in page.wait_for_function(TABLE_WIDTHS).json_value():
                    seen[f"{key}{' +more' if toggle else ''}"] = scrolls
        assert set(seen) >= {"diff_totals", "block_table", "block_table +more", "receptive_fields",
                             "compare_table", "compare_table +more"}, seen
        assert [key for key, scrolls in seen.items() if scrolls] == [], seen
        assert_no_traceback(page)
    finally:
        context.close()


# Boxes (page pixels) of the point labels (annotations or point texts), the tick labels and the plot area of the chart with key `key`.
CHART_TEXT = """(key) => { const root = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  if (!root || !root.querySelector('.annotation-text, .textpoint text')) return null;
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom, e.textContent]; };
  return {labels: [...root.querySelectorAll('.annotation-text, .textpoint text')].filter(e => e.textContent).map(box),
          xticks: [...root.querySelectorAll('.xtick text')].map(box),
          yticks: [...root.querySelectorAll('.ytick text')].map(box),
          canvas: box(root.querySelector('.main-svg'))}; }"""


def test_compare_plot_labels_do_not_overlap_and_its_log_ticks_read_as_numbers(page, server):
    """Compare's MACs-vs-params plot (SpineNet-49 beside ResNet-50-FPN and the published models): no two point
    labels overlap, every label is inside the canvas, and the log axes' ticks are plain 1-2-5 numbers that do not
    overlap either."""
    open_app(page, server)
    open_tab(page, "Compare")
    page.locator(".st-key-compare_scatter").scroll_into_view_if_needed()
    shown = page.wait_for_function(CHART_TEXT, arg="compare_scatter").json_value()
    labels = shown["labels"]
    assert any(text.startswith("SpineNet-49") for *_, text in labels), labels
    assert any(text.startswith("ResNet-50-FPN") for *_, text in labels), labels
    assert overlapping(labels) == []
    left, top, right, bottom, _ = shown["canvas"]
    assert [text for x0, y0, x1, y1, text in labels if x0 < left or x1 > right or y0 < top or y1 > bottom] == []
    for axis in ("xticks", "yticks"):
        ticks = [text for *_, text in shown[axis]]
        assert len(ticks) >= 3 and overlapping(shown[axis]) == [], ticks
        assert all(re.fullmatch(r"[125]0*|0\.0*[125]|[125]0{0,2}(,000)+", text) for text in ticks), ticks
    assert_no_traceback(page)
