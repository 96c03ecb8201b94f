"""The Memory and Sweeps tabs in Debian's Chromium against a real server: the memory settings and figures survive a
refresh; a sweep with a bad size says so in one line and keeps the text, then a small sweep runs with a progress
bar, its plots appear, and the settings and results survive a refresh. Screenshots go to the temp dir."""
from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import expect

from spinescope.analysis.memory.estimate import estimate_training_memory
from spinescope.spinenet.builtins import load_builtin
from page_helpers import assert_no_traceback, field, open_app, open_tab, type_into

SHOTS = Path(tempfile.gettempdir())
GIB = 2 ** 30


def test_memory_settings_and_figures_survive_a_refresh(page, server):
    open_app(page, server)
    open_tab(page, "Memory")
    type_into(page, "memory_size", "512")
    type_into(page, "memory_batch", "4")
    peak = estimate_training_memory(load_builtin("spinenet-49"), 512, "retinanet", 4).peak_bytes / GIB
    expect(page.get_by_text(f"{peak:,.2f} GiB", exact=True)).to_be_visible()
    expect(page.get_by_text("Largest batch that fits 16.0 GiB")).to_be_visible()
    page.reload()
    expect(field(page, "memory_size")).to_have_value("512", timeout=60_000)
    expect(field(page, "memory_batch")).to_have_value("4")
    expect(page.get_by_text(f"{peak:,.2f} GiB", exact=True)).to_be_visible()
    page.screenshot(path=str(SHOTS / "memory-tab.png"), full_page=True)
    assert_no_traceback(page)


def test_a_sweep_refuses_a_bad_size_then_runs_and_survives_a_refresh(page, server):
    open_app(page, server)
    open_tab(page, "Sweeps")
    type_into(page, "sweep_sizes", "64,6<4")
    page.get_by_role("button", name="Start sweep").click()
    expect(page.get_by_text("Not started: input size must be N or WIDTHxHEIGHT in pixels (e.g. 640 or 1333x800), "
                            "got '6<4'")).to_be_visible()
    expect(field(page, "sweep_sizes")).to_have_value("64,6<4")
    type_into(page, "sweep_sizes", "64,96")
    for key, value in (("sweep_iters", "1"), ("sweep_warmup", "0"), ("sweep_threads", "1")):
        type_into(page, key, value)
    page.get_by_role("button", name="Start sweep").click()
    expect(page.get_by_role("button", name="Cancel sweep")).to_be_visible()
    expect(page.get_by_test_id("stProgress")).to_be_visible()
    page.screenshot(path=str(SHOTS / "sweep-running.png"), full_page=True)
    expect(page.get_by_text("Last sweep (4 points")).to_be_visible(timeout=240_000)
    expect(page.locator(".st-key-sweep_latency_plot .main-svg").first).to_be_visible()
    expect(page.locator(".st-key-sweep_pareto_plot").get_by_text("Pareto front (most MACs for the time)")).to_be_visible()
    page.reload()
    expect(field(page, "sweep_sizes")).to_have_value("64,96", timeout=60_000)
    expect(field(page, "sweep_iters")).to_have_value("1")
    expect(page.get_by_text("Last sweep (4 points")).to_be_visible()
    page.screenshot(path=str(SHOTS / "sweep-done.png"), full_page=True)
    assert_no_traceback(page)
