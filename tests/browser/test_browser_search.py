"""The Search tab in Debian's Chromium at 1366 x 768 against a real server: sample the space (the distributions
appear), run a small search to completion (followed by the progress line; the scatter appears), open its best
candidate in the editor; the Edit tab then draws the candidate's blocks, and the workspace holds the stored
candidate's spec."""
from __future__ import annotations

import re
import tempfile
from dataclasses import replace
from pathlib import Path

from playwright.sync_api import expect

from spinescope.analysis.search import Store, best_candidate
from spinescope.spinenet.spec import spec_from_dict
from page_helpers import assert_no_traceback, open_app, open_tab, stored_spec, type_into, wait_until_idle

SHOTS = Path(tempfile.gettempdir())
EDIT_NODES = ".st-key-edit_graph .scatterlayer .trace:last-child path.point"


def test_sample_run_a_tiny_search_and_open_the_best_candidate_in_the_editor(page, server):
    page.set_viewport_size({"width": 1366, "height": 768})
    open_app(page, server)
    open_tab(page, "Search")
    type_into(page, "search_samples", "40")
    page.get_by_role("button", name="Sample the space").click()
    expect(page.get_by_text(re.compile(r"Population: 40 valid samples from \d+ draws"))).to_be_visible()
    expect(page.locator(".st-key-search_population_plot .main-svg").first).to_be_visible()
    page.locator(".st-key-search_population_summary_csv").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "search-population.png"))
    type_into(page, "search_budget", "150")  # a few seconds: the progress line polls, then the page shows the end
    page.get_by_role("button", name="Start search").click()
    done = page.get_by_text(re.compile(r"Run run-[0-9a-f-]+: done, 150 of 150 candidates"))
    expect(done).to_be_visible(timeout=60_000)
    expect(page.locator(".st-key-search_scatter .main-svg").first).to_be_visible()
    page.locator(".st-key-search_scatter").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "search-tab.png"))
    run_id = re.search(r"Run (run-[0-9a-f-]+):", done.inner_text()).group(1)
    best = best_candidate(Store(server.home / "search.sqlite").candidates(run_id))
    wait_until_idle(page)
    page.get_by_role("button", name="Open in editor").click()
    name = f"search-{run_id}-{best['idx']}"
    expect(page.get_by_text(f"Opened candidate {best['idx']} of run {run_id} as {name}")).to_be_visible()
    assert stored_spec(server, page) == replace(spec_from_dict(best["spec"]), name=name)
    open_tab(page, "Edit")
    expect(page.locator(EDIT_NODES)).to_have_count(2 + len(best["spec"]["blocks"]))  # the stem and its 16 blocks
    assert_no_traceback(page)
