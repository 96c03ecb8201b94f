"""Two browsers editing different specs at the same time never see each other's state or workspaces."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect

from spinescope.analysis.counting import analyze
from spinescope.app.units import billions
from browser_settings import TIMEOUT_MS, VIEWPORT
from spinescope.spinenet.edits import set_level
from page_helpers import (SPINENET_49, assert_no_traceback, backbone_macs, choose, level_label, open_app,
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


def recent_links(page) -> list[str]:
    """Returns the workspace ids linked under "Recent workspaces" (the expander opened)."""
    expander = page.locator("[data-testid='stSidebar'] details", has_text="Recent workspaces")
    if expander.get_attribute("open") is None:
        expander.locator("summary").click()
    links = expander.locator("a[href*='ws=']")
    expect(links.first).to_be_visible()
    return [parse_qs(urlparse(href).query)["ws"][0] for href in links.evaluate_all("els => els.map(e => e.href)")]


def test_recent_workspaces_are_this_browsers_own(browser, server):
    """Two browsers (two contexts: separate cookies): each lists the workspaces of its own tabs, never the other's;
    a second tab of the same browser (no `ws` in its address) lists the first tab's edited workspace."""
    contexts = [browser.new_context(viewport=VIEWPORT) for _ in range(2)]
    try:
        mine, theirs = (context.new_page() for context in contexts)
        for page, (block_id, level) in ((mine, ("b7", 5)), (theirs, ("b9", 6))):
            page.set_default_timeout(TIMEOUT_MS)
            open_app(page, server)
            open_tab(page, "Edit")
            choose(page, "edit_block_box", block_id)
            expect(page.locator(".st-key-edit_level input")).to_have_value(
                level_label(SPINENET_49.block(block_id).level))  # the block's rerun has finished
            choose(page, "edit_level", level_label(level))
            expect(page.get_by_text(f"relevelled {block_id}")).to_be_visible()
        first_tab, their_tab = workspace_of(mine), workspace_of(theirs)
        second = contexts[0].new_page()
        second.set_default_timeout(TIMEOUT_MS)
        open_app(second, server)
        listed = recent_links(second)
        assert workspace_of(second) in listed and first_tab in listed and their_tab not in listed
        assert their_tab not in " ".join(second.locator("[data-testid='stSidebar']").inner_text().split())
        assert first_tab not in recent_links(theirs) and their_tab in recent_links(theirs)
        # Named by what it holds: the first tab's line says its spec and its last change.
        line = second.locator("[data-testid='stSidebar'] li", has=second.locator(f"a[href*='{first_tab}']"))
        expect(line).to_contain_text("SpineNet-49")
        expect(line).to_contain_text("last: b7")
        assert_no_traceback(second)
    finally:
        for context in contexts:
            context.close()


def test_the_selected_block_and_an_opened_design_survive_a_refresh(page, server):
    """A block chosen in Edit is still selected after a refresh, in Edit and in Explore; opening a saved design
    says its name."""
    open_app(page, server)
    page.locator(".st-key-design_name input").fill("refresh check")
    page.locator(".st-key-design_name input").press("Enter")
    page.get_by_role("button", name="Save design").click()
    expect(page.get_by_text("Saved design “refresh check”.")).to_be_visible()
    page.get_by_role("button", name="Open design").click()
    expect(page.get_by_text("Opened design “refresh check” (SpineNet-49).")).to_be_visible()
    open_tab(page, "Edit")
    choose(page, "edit_block_box", "b9")
    expect(page.locator(".st-key-edit_level input")).to_have_value(level_label(SPINENET_49.block("b9").level))
    page.reload()
    expect(page.locator(".st-key-edit_block_box input")).to_have_value("b9", timeout=60_000)
    open_tab(page, "Explore")
    expect(page.locator(".st-key-explore_block_box input")).to_have_value("b9")
    assert_no_traceback(page)
