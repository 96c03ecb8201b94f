"""The Search tab in Debian's Chromium at 1366 x 768 against a real server: sample the space (the distributions
appear), run a small search to completion (followed by the progress line; the scatter appears), open its best
candidate in the editor; the Edit tab then draws the candidate's blocks, and the workspace holds the stored
candidate's spec. A search whose server is killed (SIGKILL) mid-run is shown as stopped by the next server on the
same data directory, and "Resume run" takes it to its full budget."""
from __future__ import annotations

import re
import time
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


def test_a_search_killed_with_its_server_resumes_on_the_next_server_to_the_end(context, tmp_path):
    import signal

    from conftest import AppServer
    from page_helpers import workspace_of

    home = tmp_path / "home"
    first = AppServer(home).start()
    page = context.new_page()
    try:
        page.set_viewport_size({"width": 1366, "height": 768})
        open_app(page, first)
        workspace = workspace_of(page)
        open_tab(page, "Search")
        type_into(page, "search_budget", "200")
        page.get_by_role("button", name="Start search").click()
        expect(page.get_by_role("button", name="Cancel search")).to_be_visible()
        store = Store(home / "search.sqlite")
        (run,) = store.runs()
        deadline = time.monotonic() + 30
        while len(store.candidates(run["id"])) < 10 and time.monotonic() < deadline:
            time.sleep(0.2)
        first.stop(signal.SIGKILL)  # the server dies mid-run: the file says 'running', nobody runs it
        stored = len(store.candidates(run["id"]))
        assert store.run(run["id"])["status"] == "running" and 10 <= stored < 200
        second = AppServer(home).start()
        try:
            open_app(page, second, workspace)
            open_tab(page, "Search")
            expect(page.get_by_text(f"Run {run['id']}: stopped (the server stopped while it ran)")).to_be_visible()
            page.get_by_role("button", name="Resume run").click()
            expect(page.get_by_text(f"Run {run['id']}: done, 200 of 200 candidates")).to_be_visible(timeout=90_000)
            assert_no_traceback(page)
        finally:
            second.stop()
    finally:
        first.stop()
        page.close()
    rows = store.candidates(run["id"])
    assert [row["idx"] for row in rows] == list(range(200)) and all(row["status"] == "done" for row in rows)
