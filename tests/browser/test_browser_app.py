"""The app in a real browser: Debian's Chromium (Playwright) against a real `streamlit run` server.

Expected figures come from the counting library on the same specs, never from the page itself.
Figures the page shows are compared with `analyze()` on the same spec: that checks the wiring (the app shows
what the library computes), not the numbers, whose correctness is tested against fvcore and hand formulas in
tests/counting/.
"""
from __future__ import annotations

import json
import os
import signal
import tempfile
from pathlib import Path

from playwright.sync_api import expect

from spinescope.analysis.counting import analyze
from spinescope.app.units import billions
from spinescope.spinenet.edits import set_level
from spinescope.spinenet.formats import loads
from spinescope.spinenet.spec import spec_hash

from page_helpers import (NODES, SPINENET_49, assert_no_traceback, backbone_macs, click_node, edit_level, open_app,
                          open_tab, select_for_edit, stored_spec, upload, workspace_of)

ROOT = Path(__file__).resolve().parents[2]
# The README's picture is refreshed only on request (`make screenshot`); otherwise it goes to the temp dir.
SCREENSHOT = (ROOT / "docs" / "screenshot.png" if os.environ.get("SPINESCOPE_UPDATE_SCREENSHOT") == "1"
              else Path(tempfile.gettempdir()) / "spinescope-screenshot.png")
def test_page_loads_with_one_node_per_block_and_a_click_selects_it(page, server):
    open_app(page, server)
    expect(page).to_have_title("SpineScope")
    expect(page.locator(NODES)).to_have_count(2 + len(SPINENET_49.blocks))
    expect(backbone_macs(page)).to_have_text(billions(analyze(SPINENET_49, 640).backbone_macs))
    assert stored_spec(server, page) == SPINENET_49
    click_node(page, SPINENET_49.block_ids.index("b14") + 2)
    expect(page.locator(".st-key-explore_block_box input")).to_have_value("b14")
    expect(page.get_by_text("level: L5 (20×20 px)")).to_be_visible()
    # Below the graph, one view at a time, drawn only when open (the scale profile is a second plotly chart).
    expect(page.locator(".st-key-block_table_csv")).to_be_visible()
    expect(page.locator(".st-key-profile")).to_have_count(0)
    open_tab(page, "Scale profile")
    expect(page.locator(".st-key-profile .js-plotly-plot")).to_be_visible()
    expect(page.locator(".st-key-block_table_csv")).to_have_count(0)
    open_tab(page, "Receptive fields (P3–P7)")
    expect(page.locator(".st-key-receptive_fields_csv")).to_be_visible()
    open_tab(page, "Per-block costs")
    # Switching them from below the fold leaves the graph as it was (it once hid every trace: the panels' heights
    # differed, so the page moved under the pointer).
    page.set_viewport_size({"width": 1366, "height": 768})
    page.wait_for_timeout(500)
    page.locator(".st-key-explore_details").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    open_tab(page, "Scale profile")
    expect(page.locator(".st-key-profile .js-plotly-plot")).to_be_visible()
    page.wait_for_timeout(1500)
    assert page.evaluate("() => document.querySelector('.st-key-graph .js-plotly-plot').data"
                         ".filter((t) => t.visible === 'legendonly').length") == 0
    expect(page.locator(NODES)).to_have_count(2 + len(SPINENET_49.blocks))
    open_tab(page, "Per-block costs")
    page.set_viewport_size({"width": 1500, "height": 1250})
    page.mouse.move(5, 5)  # no hover label or plotly toolbar in the picture
    page.evaluate("() => { for (const el of [document.scrollingElement, "
                  "document.querySelector('[data-testid=\"stMain\"]')]) if (el) el.scrollTo(0, 0); }")  # the top
    page.wait_for_timeout(1500)  # let plotly finish redrawing
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))  # the README's picture of the app
    assert SCREENSHOT.stat().st_size > 50_000
    open_tab(page, "Edit")
    expect(page.locator(".st-key-edit_block_box input")).to_have_value("b14")  # the Edit tab follows the selection
    assert_no_traceback(page)


def test_an_edit_changes_the_macs_undo_restores_them_and_a_bad_edit_says_why(page, server):
    open_app(page, server)
    before = billions(analyze(SPINENET_49, 640).backbone_macs)
    edited = set_level(SPINENET_49, "b7", 5)
    after = billions(analyze(edited, 640).backbone_macs)
    assert before != after
    expect(backbone_macs(page)).to_have_text(before)
    edit_level(page, "b7", 5)
    expect(backbone_macs(page)).to_have_text(after)
    assert stored_spec(server, page) == edited
    page.get_by_role("button", name="Undo").click()
    expect(backbone_macs(page)).to_have_text(before)
    assert stored_spec(server, page) == SPINENET_49
    page.get_by_role("button", name="Redo").click()
    expect(backbone_macs(page)).to_have_text(after)
    open_tab(page, "Edit")
    select_for_edit(page, "b5")
    page.get_by_role("button", name="Move earlier").click()
    expect(page.get_by_text("Edit rejected: cannot move 'b5' before 'b4': 'b4' is its parent and must come "
                            "earlier")).to_be_visible()
    assert stored_spec(server, page) == edited
    assert_no_traceback(page)


def test_a_bad_upload_shows_its_error_and_a_downloaded_spec_reimports_identically(page, server, tmp_path):
    open_app(page, server)
    edit_level(page, "b7", 6)
    edited = set_level(SPINENET_49, "b7", 6)
    open_tab(page, "Import / export")
    upload(page, [{"name": "bad.yaml", "mimeType": "application/x-yaml",
                   "buffer": b"name: x\nfamily: spinenet\nblocks: [&a {id: b2}, *a]\n"}])
    expect(page.get_by_text("Import failed (bad.yaml): invalid YAML")).to_be_visible()
    assert stored_spec(server, page) == edited
    with page.expect_download() as download:
        page.get_by_role("button", name="JSON (.json)").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == f"spinenet-49-edited-{spec_hash(edited)[:8]}.json"  # named as edited, not as the built-in
    assert loads(path.read_bytes(), "json") == edited
    assert json.loads(path.read_text())["blocks"][5] == {"id": "b7", "level": 6, "block_fn": "bottleneck",
                                                         "parents": ["b3", "b5"], "is_output": False}
    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("button", name="Redo")).to_be_enabled()
    assert stored_spec(server, page) == SPINENET_49
    upload(page, str(path))
    expect(page.get_by_text("Opened SpineNet-49.")).to_be_visible()
    assert stored_spec(server, page) == edited
    assert_no_traceback(page)


def test_a_refresh_and_a_killed_server_keep_the_edited_spec(page, server):
    open_app(page, server)
    edited = set_level(SPINENET_49, "b10", 6)
    edit_level(page, "b10", 6)
    expected = billions(analyze(edited, 640).backbone_macs)
    expect(backbone_macs(page)).to_have_text(expected)
    workspace = workspace_of(page)
    page.reload()
    expect(page.locator(NODES).first).to_be_visible(timeout=60_000)
    expect(backbone_macs(page)).to_have_text(expected)
    assert workspace_of(page) == workspace and stored_spec(server, page) == edited
    expect(page.get_by_role("button", name="Undo")).to_be_enabled()
    server.stop(signal.SIGKILL)  # no shutdown of any kind: only what was committed survives
    server.start()
    page.reload()
    expect(page.locator(NODES).first).to_be_visible(timeout=60_000)
    expect(backbone_macs(page)).to_have_text(expected)
    assert workspace_of(page) == workspace
    page.get_by_role("button", name="Undo").click()  # the history survived too
    expect(backbone_macs(page)).to_have_text(billions(analyze(SPINENET_49, 640).backbone_macs))
