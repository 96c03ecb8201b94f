"""What a user must not lose or be misled by, through AppTest (the real script, a real workspace in a temporary
SPINESCOPE_HOME): latency settings kept in the workspace, the estimate before a run, a tuple list with an explicit
scaling (the current Model Garden's 16-block list too), recent workspaces, design names, the kept selection, the
diff as rows and the CSV of a table."""
from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from spinescope.analysis.counting import analyze
from spinescope.analysis.latency.time_estimate import CPU_MACS_PER_SECOND
from spinescope.app.exports import table_csv
from reference_counts import SPINENET_49 as SPINENET_49_TUPLES
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import diff_specs, set_scaling
from spinescope.spinenet.formats import import_tuples
from spinescope.spinenet.spec import Block
from app_runs import run

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"
MODEL_GARDEN_16 = SPINENET_49_TUPLES + [(2, "bottleneck", (2, 13), True)]


def start(query: dict | None = None) -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.query_params.update(query or {})
    return run(app)


def open_tab(app: AppTest, label: str) -> AppTest:
    app.session_state["tab"] = label
    return run(app)


def plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def numbers(app: AppTest) -> dict:
    return {item.label: item.value for item in app.number_input}


def tuple_text(tuples) -> str:
    return "SPINENET_BLOCK_SPECS = [\n" + "".join(f"    {t!r},\n" for t in tuples) + "]\n"


def test_latency_settings_survive_other_tabs_and_a_refresh_and_the_estimate_names_its_basis(home):
    app = open_tab(start(), "Latency")
    inputs = numbers(app)
    assert inputs["Input size (px)"] == 640 and inputs["Timed iterations"] == 20  # the sidebar's size; the default
    for label, value in (("Input size (px)", 96), ("Timed iterations", 7), ("Warm-up iterations", 2),
                         ("CPU threads (0 = default)", 1)):
        next(item for item in app.number_input if item.label == label).set_value(value)
        run(app)
    next(item for item in app.multiselect if item.label.startswith("Models")).set_value(["spinenet-49s"])
    run(app)
    expected = {"Input size (px)": 96, "Timed iterations": 7, "Warm-up iterations": 2, "CPU threads (0 = default)": 1}
    # Nothing measured yet in this home: the assumed rate, named (the figures: tests/latency/test_time_estimate.py).
    estimate = next(plain(item.value) for item in app.markdown if "Estimated time" in item.value)
    assert "for 1 model × 10 passes (2 warm-up, 7 timed, 1 memory probe)" in estimate
    assert f"an assumed {CPU_MACS_PER_SECOND / 1e9:g} GMAC/s" in estimate
    open_tab(app, "Explore")
    open_tab(app, "Latency")
    assert {key: numbers(app)[key] for key in expected} == expected
    refreshed = open_tab(start({"ws": app.query_params["ws"]}), "Latency")  # a new session on the same workspace
    assert {key: numbers(refreshed)[key] for key in expected} == expected
    assert next(item for item in refreshed.multiselect if item.label.startswith("Models")).value == ["spinenet-49s"]


def test_a_bare_tuple_list_takes_the_chosen_scaling_and_says_what_was_applied(home):
    app = open_tab(start(), "Import / export")
    choice = next(item for item in app.selectbox if item.label.startswith("Scaling for a bare tuple list"))
    assert choice.value == "open spec"
    choice.set_value("spinenet-96")
    run(app)
    app.text_area[0].set_value(tuple_text(SPINENET_49_TUPLES))
    run(app)
    next(item for item in app.button if item.label == "Import pasted text").click()
    run(app)
    spec = app.session_state["history"].current
    # SpineNet-96 is SpineNet-49's block list with its own scaling: the import is that spec, under its own name.
    assert spec.scaling == load_builtin("spinenet-96").scaling and spec.input_size == 1024
    assert spec == replace(load_builtin("spinenet-96"), name="Tuple list (SpineNet-96 scaling)")
    [message] = [plain(item.value) for item in app.success]
    assert message.startswith("Imported 15 blocks from pasted text with the scaling of SpineNet-96 (endpoint "
                              "filters 256, filter size scale 1, resample alpha 0.5, block repeats 2; input 1024 px)")
    assert not app.error


def test_the_model_garden_16_block_list_imports_with_a_note_and_keeps_the_15_block_counts(home):
    app = open_tab(start(), "Import / export")
    next(item for item in app.selectbox if item.label.startswith("Scaling for a bare tuple list")).set_value(
        "spinenet-49")
    run(app)
    app.text_area[0].set_value(tuple_text(MODEL_GARDEN_16))
    run(app)
    next(item for item in app.button if item.label == "Import pasted text").click()
    run(app)
    assert not app.error
    spec = app.session_state["history"].current
    base = load_builtin("spinenet-49")
    # The 16th block is kept (built), fed by block 2 and block 13, without an output flag (no P2 endpoint).
    assert spec.blocks[:15] == base.blocks
    assert spec.blocks[15] == Block("b17", 2, "bottleneck", ("b2", "b13"), False)
    [message] = [plain(item.value) for item in app.success]
    assert message.startswith("Imported 16 blocks") and ("Note: entry 16 (b17, level 2) is an output in the list, "
                                                         "but this spec's outputs are P3-P7") in message
    # Nothing reads it: MACs are SpineNet-49's exactly; the params grow by the block's own (a bottleneck at L2 fed
    # from L2 and L3: more than zero); the 15-block built-in itself counts as before.
    ours, reference = analyze(spec, 640, "retinanet"), analyze(base, 640, "retinanet")
    assert ours.macs == reference.macs and ours.params > reference.params
    assert reference.backbone_macs == analyze(load_builtin("spinenet-49"), 640, "none").backbone_macs
    assert import_tuples(tuple_text(MODEL_GARDEN_16), base).spec == spec


def test_open_design_names_it_and_recent_workspaces_say_what_they_hold(home):
    app = start()
    app.sidebar.text_input[0].set_value("wide one")
    run(app)
    next(item for item in app.button if item.label == "Save design").click()
    run(app)
    other = AppTest.from_file(str(APP), default_timeout=60)  # another tab of the same browser: its own workspace
    other.session_state["browser_id"] = app.session_state["browser_id"]  # (designs are per browser)
    other = run(other)
    next(item for item in other.selectbox if item.label == "Saved designs").set_value("wide one")
    run(other)
    next(item for item in other.button if item.label == "Open design").click()
    run(other)
    assert [plain(item.value) for item in other.success] == ["Opened design “wide one” (SpineNet-49)."]
    recent = [plain(item.value) for item in other.sidebar.markdown if "(this one)" in plain(item.value)]
    assert len(recent) == 1 and "last: open design wide one · 1 step · " in recent[0]
    # The first tab's untouched workspace is not listed beside it (only this browser tab's own are).
    assert app.query_params["ws"] not in recent[0]


def test_the_selected_block_survives_a_refresh(home):
    app = open_tab(start(), "Edit")
    next(item for item in app.selectbox if item.label == "Block to edit").set_value("b9")
    run(app)
    refreshed = open_tab(start({"ws": app.query_params["ws"]}), "Edit")
    assert next(item for item in refreshed.selectbox if item.label == "Block to edit").value == "b9"


def test_the_scaling_diff_is_rows_without_raw_dicts_or_equal_numbers(home):
    base = load_builtin("spinenet-49")
    edited = set_scaling(base, block_repeats=2, filter_size_scale=1)  # 1 == 1.0: no change
    assert diff_specs(base, edited).rows() == [{"change": "scaling · block repeats", "before": "1", "after": "2"}]
    app = open_tab(start(), "Edit")
    next(item for item in app.number_input if item.label == "Block repeats").set_value(2)
    run(app)
    next(item for item in app.button if item.label == "Apply scaling").click()
    run(app)
    lines = [plain(item.value) for item in app.markdown if "block repeats" in item.value]
    assert lines == ["- scaling · block repeats: 1 → 2"]  # one readable line, no raw dict, no 1.0 → 1
    totals = next(frame.value for frame in app.dataframe if "figure" in frame.value.columns)
    macs = {row["figure"]: row for row in totals.to_dict("records")}["backbone MACs (B)"]
    before, after = analyze(base, 640, "retinanet").backbone_macs, analyze(edited, 640, "retinanet").backbone_macs
    assert macs["start"] == pytest.approx(before / 1e9) and macs["change"] == pytest.approx((after - before) / 1e9)


def test_table_csv_quotes_formula_cells_and_tables_show_them_quoted(home):
    frame = pd.DataFrame({"model": ["=1+1", "+cmd", "-x", "@a", "plain"], "MACs": [1.5, -2.0, 3.0, 4.0, 5.0]})
    read = pd.read_csv(io.BytesIO(table_csv(frame)))
    assert list(read["model"]) == ["'=1+1", "'+cmd", "'-x", "'@a", "plain"]
    assert list(read["MACs"]) == [1.5, -2.0, 3.0, 4.0, 5.0]  # numbers stay numbers
    app = start()
    spec_name = "=HYPERLINK(1)"
    app = open_tab(app, "Edit")
    next(item for item in app.text_input if item.label == "Spec name").set_value(spec_name)
    run(app)
    next(item for item in app.button if item.label == "Rename").click()
    run(app)
    app = open_tab(app, "Compare")
    shown = next(frame.value for frame in app.dataframe if "model" in frame.value.columns)
    assert shown["model"].iloc[0] == "'" + spec_name
