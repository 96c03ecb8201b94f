"""The graph is drawn by st.plotly_chart when plotly.js's basic bundle exists on disk but does not load in the
browser: a symlinked node_modules (Streamlit answers 400 for a path that leaves its static folder) and a truncated
bundle (served, but it defines no Plotly). Each runs a real server on a copy of the app's static folder beside a
script that runs app/main.py, in Debian's Chromium; the repository's own app/static is never touched.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import conftest
from conftest import AppServer
from page_helpers import NODES, SPINENET_49, click_node, open_app

from spinescope.app.graph_view import BUNDLE, STATIC

RUNS_THE_APP = "import runpy\nrunpy.run_path({main!r}, run_name='__main__')\n"


def site_with(tmp_path: Path, break_static) -> Path:
    """Returns a folder holding app/main.py (running the repository's app), app/static (a copy of the repository's,
    changed by `break_static`) and the project's Streamlit config."""
    site = tmp_path / "site"
    (site / "app").mkdir(parents=True)
    (site / "app" / "main.py").write_text(RUNS_THE_APP.format(main=str(conftest.ROOT / "app" / "main.py")))
    shutil.copytree(conftest.ROOT / "app" / ".streamlit", site / ".streamlit")
    shutil.copytree(STATIC, site / "app" / "static")
    break_static(site / "app" / "static", tmp_path)
    return site


def symlinked_node_modules(static: Path, tmp_path: Path) -> None:
    shutil.move(static / "node_modules", tmp_path / "node_modules")
    (static / "node_modules").symlink_to(tmp_path / "node_modules", target_is_directory=True)


def truncated_bundle(static: Path, tmp_path: Path) -> None:
    bundle = static / BUNDLE
    bundle.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])


@pytest.mark.parametrize("break_static, status", [(symlinked_node_modules, 400), (truncated_bundle, 200)])
def test_a_bundle_on_disk_that_does_not_load_falls_back_to_streamlits_plotly_chart(page: Page, tmp_path, break_static,
                                                                                   status):
    site = site_with(tmp_path, break_static)
    assert (site / "app" / "static" / BUNDLE).is_file()  # on disk, as the server sees it
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conftest, "ROOT", site)  # AppServer runs the script from ROOT
        server = AppServer(tmp_path / "home", script="app/main.py").start()
    answers = []
    page.on("response", lambda response: answers.append(response.status) if response.url.endswith(BUNDLE.name)
            else None)
    try:
        open_app(page, server)
        expect(page.locator(".st-key-graph [data-testid='stPlotlyChart']")).to_have_count(1)
        expect(page.locator(NODES)).to_have_count(2 + len(SPINENET_49.blocks))
        assert answers and answers[0] == status  # the reproduction happened: the page did ask for the bundle
        click_node(page, SPINENET_49.block_ids.index("b14") + 2)
        expect(page.locator(".st-key-explore_block_box input")).to_have_value("b14")
    finally:
        server.stop()
