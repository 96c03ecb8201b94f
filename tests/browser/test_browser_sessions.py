"""Two browsers editing different specs at the same time never see each other's state."""
from __future__ import annotations

from playwright.sync_api import expect

from analysis.counting import analyze
from app.units import billions
from browser_settings import TIMEOUT_MS, VIEWPORT
from spinenet.edits import set_level
from test_browser_app import (SPINENET_49, assert_no_traceback, backbone_macs, choose, level_label, open_app,
                              open_tab, stored_spec, workspace_of)


def test_two_sessions_edit_at_once_without_mixing(browser, server):
    contexts = [browser.new_context(viewport=VIEWPORT) for _ in range(2)]
    try:
        first, second = (context.new_page() for context in contexts)
        for page in (first, second):
            page.set_default_timeout(TIMEOUT_MS)
            open_app(page, server)
            open_tab(page, "Edit")
        assert workspace_of(first) != workspace_of(second)
        # Interleave the two users' clicks: each action is sent before the other page's rerun has finished.
        edits = {id(first): ("b7", 5), id(second): ("b9", 6)}
        for page in (first, second):
            choose(page, "edit_block_box", edits[id(page)][0])
        for page in (first, second):
            expect(page.locator(".st-key-edit_level input")).to_have_value(
                level_label(SPINENET_49.block(edits[id(page)][0]).level))
        for page in (first, second):
            choose(page, "edit_level", level_label(edits[id(page)][1]))
        for page in (first, second):
            block_id, level = edits[id(page)]
            expect(page.get_by_text(f"relevelled {block_id}")).to_be_visible()
            open_tab(page, "Explore")
            expected = set_level(SPINENET_49, block_id, level)
            expect(backbone_macs(page)).to_have_text(billions(analyze(expected, 640).backbone_macs))
            assert stored_spec(server, page) == expected
            assert_no_traceback(page)
    finally:
        for context in contexts:
            context.close()
