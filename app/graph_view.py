"""The architecture graph on the page, drawn in place by plotly.js's basic bundle.

`st.plotly_chart` loads Streamlit's full plotly.js chunk (4.6 MB) before the first graph of a visit can be drawn, and
gives every changed figure a new element, so each edit mounts a new chart. The graph needs scatter traces only:
this Streamlit v2 component (graph_view.js) loads the basic bundle (1.2 MB; `make setup` installs it with npm from
app/static/package-lock.json, and Streamlit serves app/static/) and updates its one chart with `Plotly.react`.
`benchmarks/bench_edit_loop.py` times the first visit and the edits beside an earlier commit. Where the bundle is
not installed (`pip install .`, or no npm), the graph falls back to `st.plotly_chart` with the same figure and the
same click behaviour; so it does for the rest of a session once the browser reports that the bundle did not load
(a file that exists but is not served, such as a symlinked node_modules, or a truncated one that defines no Plotly).
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Callable

import plotly.graph_objects as go
import streamlit as st
from plotly.io.json import to_json_plotly
from streamlit.runtime.scriptrunner import get_script_run_ctx

LOG = logging.getLogger("spinescope.app")
STATIC = Path(__file__).resolve().parent / "static"
BUNDLE = Path("node_modules") / "plotly.js-basic-dist-min" / "plotly-basic.min.js"  # under STATIC
BUNDLE_FAILED = "graph_bundle_failed"  # session state: the browser's message when the bundle did not load
PLOTLY_CONFIG = {"displaylogo": False, "scrollZoom": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
FONT = '"Source Sans", sans-serif'  # Streamlit's font: the graph's preset margins are measured in it
# The part of Streamlit's light plotly theme that the graph's look and preset margins depend on (what
# st.plotly_chart applies in the browser), given to the component's figures as their template.
STREAMLIT_LOOK = {
    "data": {"scatter": [{"marker": {"line": {"width": 0}}}]},
    "layout": {
        "font": {"family": FONT, "size": 12, "color": "#808495"},
        "title": {"font": {"family": FONT, "size": 16, "color": "#2F2D2B"}, "pad": {"l": 4}, "x": 0,
                  "xanchor": "left"},
        "legend": {"title": {"font": {"size": 12, "color": "#808495"}, "side": "top"}, "valign": "top",
                   "bordercolor": "transparent", "borderwidth": 0, "font": {"size": 12, "color": "#262730"}},
        "paper_bgcolor": "#FFFFFF", "plot_bgcolor": "#FFFFFF", "margin": {"pad": 8, "r": 0, "l": 0},
        "hoverlabel": {"bgcolor": "#FFFFFF", "bordercolor": "rgba(47, 45, 43, 0.2)",
                       "font": {"family": FONT, "size": 12, "color": "#808495"}},
        "xaxis": {"showgrid": False, "zeroline": False, "gridcolor": "#e6eaf1", "tickcolor": "#e6eaf1",
                  "tickfont": {"size": 12, "color": "#808495"}, "automargin": True,
                  "title": {"font": {"size": 14, "color": "#808495"}, "standoff": 20}},
        "yaxis": {"ticklabelposition": "outside", "gridcolor": "#e6eaf1", "tickcolor": "#e6eaf1",
                  "zerolinecolor": "#e6eaf1", "tickfont": {"size": 12, "color": "#808495"}, "automargin": True,
                  "title": {"font": {"size": 14, "color": "#808495"}, "standoff": 24}},
    },
}


@lru_cache(maxsize=1)
def _component():
    """Returns the registered component's mounting command (registered once per server)."""
    script = (Path(__file__).resolve().parent / "graph_view.js").read_text(encoding="utf-8")
    return st.components.v2.component("spinescope_graph", js=script, isolate_styles=False)


def served_static() -> Path:
    """Returns the folder Streamlit serves at app/static/: the one beside the script it runs (app/static/ for
    app/main.py)."""
    context = get_script_run_ctx()
    return Path(context.main_script_path).resolve().parent / "static" if context else STATIC


def bundle_url() -> str | None:
    """Returns the page-relative URL of plotly.js's basic bundle, or None when it is not installed, Streamlit's
    static file serving is off, or this session's browser could not load it (then st.plotly_chart draws the graph)."""
    if st.session_state.get(BUNDLE_FAILED) or not st.get_option("server.enableStaticServing"):
        return None
    if not (served_static() / BUNDLE).is_file():
        return None
    return "app/static/" + BUNDLE.as_posix()


def _figure_json(figure: go.Figure) -> str:
    """Returns the figure as plotly.js JSON, with STREAMLIT_LOOK for its template and clicks as events only (plotly
    would otherwise dim every node but the clicked one until the page redraws)."""
    data = figure.to_plotly_json()
    data["layout"] = {**data["layout"], "template": STREAMLIT_LOOK, "clickmode": "event"}
    return to_json_plotly(data)


def show_graph(figure: go.Figure, key: str, on_click: Callable[[str], None], alt: str) -> None:
    """Shows `figure` (app.graph_figure's) as the element with key `key`; clicking a node calls `on_click` with its
    block id before the page reruns. `alt` describes the graph in words for screen readers."""
    url = bundle_url()
    if url is None:
        st.plotly_chart(figure, key=key, on_select=lambda: _chart_clicked(key, on_click), selection_mode="points",
                        config=PLOTLY_CONFIG, alt=alt)
        return
    _component()(key=key, data={"figure": _figure_json(figure), "src": url, "config": PLOTLY_CONFIG, "alt": alt},
                 on_clicked_change=lambda: _component_clicked(key, on_click),
                 on_unavailable_change=lambda: _bundle_failed(key))


def _bundle_failed(key: str) -> None:
    message = (st.session_state.get(key) or {}).get("unavailable")
    if message:
        LOG.warning("the graph falls back to st.plotly_chart: %s", ascii(str(message))[:300])
        st.session_state[BUNDLE_FAILED] = str(message)[:300]


def _component_clicked(key: str, on_click: Callable[[str], None]) -> None:
    block = (st.session_state.get(key) or {}).get("clicked")
    if isinstance(block, str):
        on_click(block)


def _chart_clicked(key: str, on_click: Callable[[str], None]) -> None:
    points = (st.session_state.get(key) or {}).get("selection", {}).get("points", [])
    for point in points:
        custom = point.get("customdata")
        if custom:
            on_click(custom[0] if isinstance(custom, list) else custom)
            return
