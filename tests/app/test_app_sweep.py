"""The Sweeps tab through AppTest with a real worker process: a small sweep runs in the background with a progress
bar, every point goes in the history (the table shows the stored medians), the plots are latency vs input size
per series and MACs vs latency with the Pareto front (recomputed here by brute force); a bad grid value is one line
naming it and the text stays; cancel stores nothing; the settings and the last sweep survive other tabs."""
import json
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from spinescope.analysis.counting import count_model
from spinescope.analysis.latency.history import list_results
from spinescope.spinenet.builtins import load_builtin
from app_runs import run

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


def sweeps_tab(sizes="64,96", batches="1", iters=1, models=("current spec", "spinenet-mobile-49xs")):
    app = run(AppTest.from_file(str(APP), default_timeout=60))
    app.session_state["tab"] = "Sweeps"
    run(app)
    texts = {item.label: item for item in app.text_input}
    texts["Input sizes (px, comma list)"].set_value(sizes)
    texts["Batches (comma list)"].set_value(batches)
    numbers = {item.label: item for item in app.number_input}
    numbers["Timed iterations"].set_value(iters)
    numbers["Warm-up iterations"].set_value(0)
    numbers["CPU threads (0 = default)"].set_value(1)
    next(item for item in app.selectbox if item.label == "Device").set_value("cpu")
    next(item for item in app.multiselect if item.label.startswith("Models")).set_value(list(models))
    return run(app)


def start(app):
    next(item for item in app.button if item.label == "Start sweep").click()
    return run(app)


def wait(app, limit=180):
    started = time.monotonic()
    while any(item.label == "Cancel sweep" for item in app.button) and time.monotonic() - started < limit:
        time.sleep(0.5)
        run(app)
    assert not any(item.label == "Cancel sweep" for item in app.button), "the sweep did not end in time"


def plain(text):
    return re.sub(r"\\(.)", r"\1", text)


def brute_force_front(pairs):
    return {i for i, (macs, ms) in enumerate(pairs)
            if not any(m >= macs and t <= ms and (m, t) != (macs, ms) for m, t in pairs)}


def test_a_sweep_runs_in_the_background_and_every_point_is_stored_and_plotted(home):
    app = sweeps_tab()
    assert any(plain(item.value).startswith("4 point(s)") for item in app.caption)
    start(app)
    assert app.get("progress") and any(item.label == "Cancel sweep" for item in app.button)
    assert all(item.disabled for item in app.text_input if "comma list" in item.label)
    wait(app)
    assert [plain(item.value) for item in app.success] == ["Sweep done: 4 point(s) measured and stored in the history."]
    stored = {(entry.spec_name, entry.input_size): entry for entry in list_results(path=home / "history.sqlite")}
    assert len(stored) == 4
    frame = next(item.value for item in app.dataframe if "GMACs per pass" in item.value)
    assert sorted(zip(frame["model"], frame["input px"])) == sorted(stored)
    for row in frame.itertuples():
        entry = stored[(row.model, row._2)]
        assert row._5 == pytest.approx(entry.median_ms) and row._12 == entry.id  # median ms, history id
    specs = {"SpineNet-49": load_builtin("spinenet-49"), "Mobile SpineNet-49XS": load_builtin("spinenet-mobile-49xs")}
    gmacs = [count_model(specs[m], size).macs("") / 1e9 for m, size in zip(frame["model"], frame["input px"])]
    assert list(frame["GMACs per pass"]) == pytest.approx(gmacs)
    plots = {json.loads(item.proto.spec)["layout"]["title"]["text"]: json.loads(item.proto.spec)
             for item in app.get("plotly_chart")}
    size_plot = next(plot for title, plot in plots.items() if title.startswith("Latency vs input size"))
    assert sorted(trace["name"] for trace in size_plot["data"]) == ["Mobile SpineNet-49XS b1 fp32",
                                                                   "SpineNet-49 b1 fp32"]
    assert all(trace["x"] == [64, 96] for trace in size_plot["data"])
    pareto = next(plot for title, plot in plots.items() if title.startswith("MACs vs latency"))
    points = [(x, y) for trace in pareto["data"][:-1] for x, y in zip(trace["x"], trace["y"])]
    front = pareto["data"][-1]
    assert front["name"].startswith("Pareto front")
    expected = brute_force_front([(macs, ms) for ms, macs in points])
    assert sorted(zip(front["x"], front["y"])) == sorted(points[i] for i in expected)

    app.session_state["tab"] = "Explore"
    run(app)
    app.session_state["tab"] = "Sweeps"
    run(app)
    assert {item.label: item.value for item in app.text_input}["Input sizes (px, comma list)"] == "64,96"
    assert any(plain(item.value).startswith("##### Last sweep (4 points") for item in app.markdown)


def test_a_bad_grid_value_is_one_line_and_keeps_the_text(home):
    app = sweeps_tab(sizes="64,<b>9x\x1b")
    start(app)
    errors = [plain(item.value) for item in app.error]
    assert errors == ["Not started: input size must be N or WIDTHxHEIGHT in pixels (e.g. 640 or 1333x800), got "
                      "'<b>9x\\x1b'"]
    assert {item.label: item.value for item in app.text_input}["Input sizes (px, comma list)"] == "64,<b>9x\x1b"
    app = sweeps_tab(sizes="64", batches="1,0")
    start(app)
    assert [plain(item.value) for item in app.error] == ["Not started: batch 0 is out of range [1, 4096]"]
    assert list_results(path=home / "history.sqlite") == []


def test_cancel_stores_nothing(home):
    app = sweeps_tab(sizes="128", iters=1000, models=("current spec",))
    start(app)
    next(item for item in app.button if item.label == "Cancel sweep").click()
    run(app)
    wait(app, limit=60)
    assert [plain(item.value) for item in app.info] == ["Sweep cancelled; no point stored."]
    assert list_results(path=home / "history.sqlite") == []
    assert any(item.label == "Start sweep" and not item.disabled for item in app.button)


def test_a_refresh_follows_the_running_sweep_and_another_workspace_never_sees_it(home):
    app = sweeps_tab(sizes="128", iters=1000, models=("current spec",))
    start(app)
    workspace = app.query_params["ws"]
    refreshed = AppTest.from_file(str(APP), default_timeout=60)  # a new session on the same address
    refreshed.query_params["ws"] = workspace
    run(refreshed)
    refreshed.session_state["tab"] = "Sweeps"
    run(refreshed)
    assert any(item.label == "Cancel sweep" for item in refreshed.button)
    assert {item.label: item.value for item in refreshed.text_input}["Input sizes (px, comma list)"] == "128"
    other = run(AppTest.from_file(str(APP), default_timeout=60))  # another workspace
    other.session_state["tab"] = "Sweeps"
    run(other)
    assert other.query_params["ws"] != workspace
    assert not any(item.label == "Cancel sweep" for item in other.button)
    assert any(item.label == "Start sweep" and not item.disabled for item in other.button)
    next(item for item in refreshed.button if item.label == "Cancel sweep").click()  # cancelled from the refresh
    run(refreshed)
    wait(refreshed, limit=60)
    assert list_results(path=home / "history.sqlite") == []


def test_a_sweep_whose_page_is_closed_is_still_stored_and_shown_to_the_next_page(home):
    from spinescope.app.workspace import WorkspaceStore

    app = sweeps_tab(sizes="64", models=("spinenet-mobile-49xs",))
    start(app)
    workspace = app.query_params["ws"]
    del app  # the tab is closed: no page of the workspace runs again until the sweep has ended
    store = WorkspaceStore(home / "workspace.sqlite")
    deadline = time.monotonic() + 180
    while "sweep_last" not in store.settings(workspace) and time.monotonic() < deadline:
        time.sleep(0.5)
    (entry,) = list_results(path=home / "history.sqlite")
    (record,) = store.settings(workspace)["sweep_last"]["records"]
    assert (entry.spec_name, entry.input_size, record["history_id"]) == ("Mobile SpineNet-49XS", 64, entry.id)
    reopened = AppTest.from_file(str(APP), default_timeout=60)
    reopened.query_params["ws"] = workspace
    run(reopened)
    reopened.session_state["tab"] = "Sweeps"
    run(reopened)
    assert any(plain(item.value).startswith("##### Last sweep (1 point,") for item in reopened.markdown)
    assert not any(item.label == "Cancel sweep" for item in reopened.button)
