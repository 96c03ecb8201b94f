"""Keyboard undo and what fits a 1366x768 window, in Debian's Chromium against a real server: Ctrl+Z and
Ctrl+Shift+Z undo and redo the spec (checked in the workspace file), but not while typing in a text field; the
"Import pasted text" button shows its whole label; the sweep plots' toolbars clear their titles and their axis
titles are drawn whole. Sweep records are put in the workspace as a finished sweep leaves them."""
from __future__ import annotations

import time

from playwright.sync_api import expect

from spinescope.app.workspace import WORKSPACE_FILE, WorkspaceStore
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import set_level
from page_helpers import assert_no_traceback, edit_level, open_app, open_tab, overlapping, stored_spec, \
    wait_until_idle, workspace_of

FOLD = {"width": 1366, "height": 768}
SPINENET_49 = load_builtin("spinenet-49")


def wait_for_spec(server, page, spec, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while stored_spec(server, page) != spec and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert stored_spec(server, page) == spec


def test_ctrl_z_and_ctrl_shift_z_undo_and_redo_but_not_while_typing(page, server):
    open_app(page, server)
    edited = set_level(SPINENET_49, "b7", 5)
    edit_level(page, "b7", 5)
    wait_for_spec(server, page, edited)
    wait_until_idle(page)  # the rerun has drawn the Undo button the keys press (a loaded machine is slow)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Control+z")
    wait_for_spec(server, page, SPINENET_49)
    wait_until_idle(page)
    page.keyboard.press("Control+Shift+z")
    wait_for_spec(server, page, edited)
    open_tab(page, "Import / export")
    paste = page.locator(".st-key-paste_text textarea")
    paste.click()
    page.keyboard.type("[(2, 'bottleneck'")
    page.keyboard.press("Control+z")  # the field's own undo, not the spec's
    page.wait_for_timeout(1500)
    wait_until_idle(page)
    assert stored_spec(server, page) == edited
    assert_no_traceback(page)


def test_the_import_button_shows_its_whole_label_at_1366(page, server):
    page.set_viewport_size(FOLD)
    open_app(page, server)
    open_tab(page, "Import / export")
    button = page.locator(".st-key-import_paste button")
    expect(button).to_be_visible()
    # No part of the label is cut: no element inside the button that clips its content (an ellipsis) has content
    # wider than itself, by even a pixel; the label's text is no wider than the box that holds it.
    cut = button.evaluate("""b => [b, ...b.querySelectorAll('*')].filter(e => (getComputedStyle(e).overflow !== 'visible'
        && e.scrollWidth > e.clientWidth) || (e.tagName === 'P' && e.getBoundingClientRect().width
        > e.parentElement.getBoundingClientRect().width + 0.5)).map(e => e.tagName + ' ' + e.scrollWidth + '>'
        + e.clientWidth)""")
    assert cut == [] and button.inner_text().strip() == "Import pasted text"


def sweep_records() -> list[dict]:
    records = []
    for name, scale in (("SpineNet-49, edited · 3fa2c1d0", 1.0), ("ResNet-50-FPN", 1.4)):
        for size in (64, 96, 128):
            median = scale * size * size / 400
            records.append({"spec": "spinenet-49", "name": name, "input_size": size, "batch": 1, "precision": "fp32",
                            "device": "cpu", "device_name": "cpu", "median_ms": median, "p10_ms": 0.9 * median,
                            "p90_ms": 1.1 * median, "throughput": 1000 / median, "peak_memory_bytes": 2 ** 26,
                            "macs": int(scale * 2e9 * (size / 640) ** 2), "train_peak_bytes": 2 ** 30,
                            "train_optimizer": "sgd", "history_id": None, "run_id": "r"})
    return records


# Boxes (left, top, right, bottom, what) of each sweep plot's title, axis titles, plot toolbar and the element's
# own toolbar, with the plot's drawing area; null until the plot is drawn.
PLOT_BOXES = """key => { const element = document.querySelector(`.st-key-${key}`);
  const svg = element && element.querySelector('.main-svg');
  if (!svg || !element.querySelector('.gtitle')) return null;
  const box = (e, what) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom, what]; };
  const toolbars = [...element.querySelectorAll('.modebar'), ...document.querySelectorAll(
      '[data-testid="stElementToolbar"]')].filter(e => e.getBoundingClientRect().width > 0
      && element.parentElement.contains(e));
  return {title: box(element.querySelector('.gtitle'), 'title'), toolbars: toolbars.map(e => box(e, 'toolbar')),
          axes: [...element.querySelectorAll('.xtitle, .ytitle')].map(e => box(e, e.getAttribute('class'))),
          canvas: box(svg, 'canvas')}; }"""


def test_the_sweep_plots_toolbars_clear_their_titles_and_axis_titles_are_whole_at_1366(page, server):
    page.set_viewport_size(FOLD)
    open_app(page, server)
    store = WorkspaceStore(server.home / WORKSPACE_FILE)
    workspace = workspace_of(page)
    store.save_settings(workspace, {**store.settings(workspace), "sweep_last": {
        "records": sweep_records(), "finished": "2026-01-01 00:00:00", "seconds": 12}})
    page.reload()
    open_tab(page, "Sweeps")
    for key in ("sweep_latency_plot", "sweep_pareto_plot"):
        plot = page.locator(f".st-key-{key}")
        plot.scroll_into_view_if_needed()
        plot.hover()  # the toolbars show on hover
        page.wait_for_timeout(500)
        boxes = page.evaluate(PLOT_BOXES, key)
        assert boxes is not None and boxes["toolbars"], key
        assert overlapping([boxes["title"]] + boxes["toolbars"]) in ([], [("toolbar", "toolbar")]), (key, boxes)
        left, top, right, bottom, _ = boxes["canvas"]
        for axis in boxes["axes"]:
            assert left <= axis[0] and axis[2] <= right and top <= axis[1] and axis[3] <= bottom, (key, axis, boxes)
    assert_no_traceback(page)
