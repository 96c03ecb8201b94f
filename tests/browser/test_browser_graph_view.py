"""How the architecture graph reaches the page (app/graph_view.py), in Debian's Chromium against real `streamlit run`
servers: plotly.js's basic bundle draws it and Streamlit's full plotly chunk is never fetched for it; a click on a
node selects the block; a click or an edit redraws the same chart in place; with Streamlit's static file serving off,
st.plotly_chart draws it instead, and a click still selects. Static serving gives out the bundle and nothing outside
app/static/, and a first visit asks nothing of any other host.
"""
from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from spinescope.app.graph_view import BUNDLE, STATIC
from browser_settings import TIMEOUT_MS, VIEWPORT
from conftest import AppServer
from page_helpers import (NODES, SPINENET_49, choose, click_node, level_label, open_app, open_tab, select_for_edit,
                          wait_until_idle)

CHART = ".st-key-{key} .js-plotly-plot"
# Remembers the chart element now on the page under `key`, then tells whether it is still the same element.
REMEMBER = "(key) => { window.chartBefore = document.querySelector(`.st-key-${key} .js-plotly-plot`); }"
SAME_CHART = "(key) => document.querySelector(`.st-key-${key} .js-plotly-plot`) === window.chartBefore"
# The selection ring's centre (the layout's one shape) in data coordinates.
RING = "(key) => { const s = document.querySelector(`.st-key-${key} .js-plotly-plot`).layout.shapes[0]; " \
       "return [s.xanchor, s.yanchor]; }"
# The level a block is drawn at, read from the chart's node trace.
# The main area's top-level elements (test id and key) up to the tabs: an element drawn on one run and not the next
# ahead of the tabs moves them, and the browser mounts the open tab again (the graph too).
MAIN_ELEMENTS = """() => { const all = [...document.querySelector('[data-testid=stMainBlockContainer] > div').children]
  .map((e) => [e.getAttribute('data-testid'), [...e.classList].filter((c) => c.startsWith('st-key-')).join(' ')]);
  return all.slice(0, all.findIndex(([id, key]) => key === 'st-key-tab') + 1); }"""
LEVEL_OF = """([key, id]) => {
  const trace = document.querySelector(`.st-key-${key} .js-plotly-plot`).data.find((t) => t.name === 'blocks');
  return trace.y[trace.customdata.findIndex((c) => c[0] === id)];
}"""


def script_names(requests: list[str]) -> list[str]:
    return [url.rsplit("/", 1)[-1].split("?")[0] for url in requests]


def test_the_basic_bundle_draws_the_graph_and_clicks_and_edits_redraw_it_in_place(browser, server):
    context = browser.new_context(viewport=VIEWPORT)  # empty cache: every script the first visit needs is fetched
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    scripts = []
    page.on("request", lambda request: scripts.append(request.url) if request.resource_type == "script" else None)
    try:
        open_app(page, server)
        names = script_names(scripts)
        assert "plotly-basic.min.js" in names
        assert not [name for name in names if name.startswith("PlotlyChart")]  # Streamlit's full plotly.js chunk
        expect(page.get_by_role("figure", name=f"Graph of {SPINENET_49.name}: {2 + len(SPINENET_49.blocks)} "
                                               "blocks by order and feature level")).to_be_visible()
        page.evaluate(REMEMBER, "graph")
        first_run = page.evaluate(MAIN_ELEMENTS)
        b14 = SPINENET_49.block_ids.index("b14") + 2
        click_node(page, b14)
        expect(page.locator(".st-key-explore_block_box input")).to_have_value("b14")
        page.wait_for_function(f"(key) => ({RING})(key)[0] === {b14}", arg="graph")
        wait_until_idle(page)
        assert page.evaluate(MAIN_ELEMENTS) == first_run
        assert page.evaluate(SAME_CHART, "graph")
        page.get_by_text("node colour = MACs share", exact=True).click()
        expect(page.locator(".st-key-graph .colorbar")).to_be_visible()
        assert page.evaluate(SAME_CHART, "graph")
        expect(page.locator(NODES)).to_have_count(2 + len(SPINENET_49.blocks))

        open_tab(page, "Edit")
        select_for_edit(page, "b7")
        expect(page.locator(CHART.format(key="edit_graph"))).to_be_visible()
        assert page.evaluate(LEVEL_OF, ["edit_graph", "b7"]) == 4
        page.evaluate(REMEMBER, "edit_graph")
        choose(page, "edit_level", level_label(5))
        page.wait_for_function(f"(args) => ({LEVEL_OF})(args) === 5", arg=["edit_graph", "b7"])
        assert page.evaluate(SAME_CHART, "edit_graph")
        assert not [name for name in script_names(scripts) if name.startswith("PlotlyChart")]
    finally:
        context.close()


@pytest.fixture(scope="module")
def chart_server(tmp_path_factory):
    """The app with Streamlit's static file serving off, as where the bundle cannot be served."""
    app = AppServer(tmp_path_factory.mktemp("no-static") / "home",
                    options=("--server.enableStaticServing", "false")).start()
    yield app
    app.stop()


def test_without_the_bundle_streamlits_plotly_chart_draws_the_graph_and_a_click_selects(page: Page, chart_server):
    scripts = []
    page.on("request", lambda request: scripts.append(request.url) if request.resource_type == "script" else None)
    open_app(page, chart_server)
    expect(page.locator(".st-key-graph [data-testid='stPlotlyChart']")).to_have_count(1)
    expect(page.locator(NODES)).to_have_count(2 + len(SPINENET_49.blocks))
    assert "plotly-basic.min.js" not in script_names(scripts)
    click_node(page, SPINENET_49.block_ids.index("b14") + 2)
    expect(page.locator(".st-key-explore_block_box input")).to_have_value("b14")
    expect(page.get_by_text("level: L5 (20×20 px)")).to_be_visible()


@pytest.mark.parametrize("path", ["app/static/%2e%2e/main.py", "app/static/..%2fmain.py",
                                  "app/static/..%2F..%2FMakefile", "app/static/%2e%2e/%2e%2e/requirements.txt"])
def test_static_serving_gives_out_nothing_outside_app_static(server, path):
    try:
        with urllib.request.urlopen(f"{server.url}/{path}", timeout=10) as response:
            body = response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        assert error.code in (400, 403, 404)
        return
    assert "import streamlit" not in body and "pytest" not in body and "PYTHON ?=" not in body


def test_static_serving_gives_the_bundle_as_javascript(server):
    with urllib.request.urlopen(f"{server.url}/app/static/{BUNDLE.as_posix()}", timeout=10) as response:
        assert response.headers["Content-Type"].split(";")[0] in ("application/javascript", "text/javascript")
        assert response.read() == (STATIC / BUNDLE).read_bytes()


def test_a_first_visit_asks_nothing_of_any_other_host(browser, server):
    """Everything the page loads comes from the app's own server (before, the favicon came from Google's servers)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    elsewhere = []
    page.on("request", lambda request: elsewhere.append(request.url)
            if not request.url.startswith((server.url, "data:", "blob:")) else None)
    try:
        open_app(page, server)
        page.wait_for_timeout(2000)  # the favicon and the fonts come after the page
        assert elsewhere == []
    finally:
        context.close()
