"""Per-block latency in the app through AppTest with a real worker process: the Latency tab's 'Time every block'
run shows the per-block table, the sum and hook checks and MACs share vs time share; Explore's time-share colour
mode then colours the graph by that run's times (recomputed here from the stored history), and says what to do
when the open spec has no per-block run."""
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from spinescope.analysis.latency.history import list_results
from spinescope.app.graph_figure import NODE_TRACE_NAME
from app_runs import figures, run

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


def open_tab(app, name):
    app.session_state["tab"] = name
    return run(app)


def graph_nodes(app):
    return next(trace for figure in figures(app) for trace in figure["data"] if trace.get("name") == NODE_TRACE_NAME)


def test_a_per_block_run_fills_the_table_checks_and_shares_and_colours_the_graph(home):
    app = run(AppTest.from_file(str(APP), default_timeout=60))
    open_tab(app, "Explore")
    app.segmented_control(key="macs_mode").set_value("time_colour")
    run(app)
    assert any("No per-block latency for this spec yet" in item.value and "Time every block" in item.value
               for item in app.info)
    open_tab(app, "Latency")
    inputs = {item.label: item for item in app.number_input}
    inputs["Input size (px)"].set_value(64)
    inputs["Timed iterations"].set_value(2)
    inputs["Warm-up iterations"].set_value(0)
    inputs["CPU threads (0 = default)"].set_value(1)
    next(item for item in app.selectbox if item.label == "Device").set_value("cpu")
    next(item for item in app.multiselect if item.label.startswith("Models")).set_value(["current spec"])
    next(item for item in app.checkbox if item.label == "Time every block").check()
    run(app)
    assert any("with the per-block hooks" in item.value for item in app.markdown)  # the estimate counts them
    next(item for item in app.button if item.label == "Measure latency").click()
    run(app)
    started = time.monotonic()
    while any(item.label == "Cancel" for item in app.button) and time.monotonic() - started < 180:
        time.sleep(0.5)
        run(app)
    assert not any(item.label == "Cancel" for item in app.button) and not app.error
    [stored] = list_results(path=home / "history.sqlite")
    blocks = stored.figures["blocks"]
    assert blocks and stored.figures["blocks_sum_ms"] == pytest.approx(sum(b["median_ms"] for b in blocks))
    assert any(item.value.startswith("##### Per block (this run)") for item in app.markdown)
    table = next(frame.value for frame in app.dataframe if "unit" in frame.value)
    assert list(table["unit"]) == [b["id"] for b in blocks]
    assert list(table["median ms"]) == pytest.approx([b["median_ms"] for b in blocks])
    assert table["share %"].sum() == pytest.approx(100.0)
    check = next(item.value for item in app.markdown if item.value.startswith("**Sum of the block medians**"))
    diff = 100 * (stored.figures["blocks_sum_ms"] - stored.median_ms) / stored.median_ms
    assert f"{diff:+.1f} %" in check and "timing hooks" in check
    overhead = 100 * (stored.figures["hooked_median_ms"] / stored.median_ms - 1)
    assert f"{overhead:+.1f} %" in check
    shares = next(figure for figure in figures(app) if "MACs share vs time share" in figure["layout"]["title"]["text"])
    diagonal, dots = shares["data"]
    assert diagonal["x"] == diagonal["y"]  # y = x
    timed = {b["node"]: b["median_ms"] for b in blocks if b["node"]}
    assert [custom[0] for custom in dots["customdata"]] == list(timed)  # block ids on hover
    assert dots["y"] == pytest.approx([100 * median / sum(timed.values()) for median in timed.values()])

    open_tab(app, "Explore")  # the time mode was kept; now it colours by this run's times
    assert not any("No per-block latency" in item.value for item in app.info)
    assert any(re.sub(r"\\(.)", r"\1", item.value).startswith("Time share from the latest per-block run: "
                                                                 "SpineNet-49 (current) at 64 px")
               for item in app.caption)
    nodes = graph_nodes(app)
    timed = {b["node"]: b["median_ms"] for b in blocks if b["node"]}
    total = sum(timed.values())
    colours = dict(zip((custom[0] for custom in nodes["customdata"]), nodes["marker"]["color"]))
    assert set(colours) == set(timed)
    for node, median in timed.items():
        assert colours[node] == pytest.approx(median / total)
    assert nodes["marker"]["colorbar"]["title"]["text"] == "time share"
