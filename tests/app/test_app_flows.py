"""The app driven through its widgets with Streamlit's AppTest (the real script, a real SQLite workspace in a
temporary SPINESCOPE_HOME, real counting): pick a built-in, edit, see validation messages, undo/redo, compare,
export bytes that re-import to the same spec, persistence across a refresh, isolation between sessions.

Figures the page shows are compared with `analyze()` on the same spec: that checks the wiring (the app shows
what the library computes), not the numbers, whose correctness is tested against fvcore and hand formulas in
tests/counting/."""
from __future__ import annotations

import os
from dataclasses import replace
import re
import time
from pathlib import Path

import onnx
import pytest
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from spinescope.analysis.counting import analyze
from spinescope.app.workspace import WORKSPACE_FILE, WorkspaceStore
from spinescope.app.units import billions, millions
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import set_level
from spinescope.spinenet.formats import loads
from app_runs import figures, run

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app" / "main.py"
SPINENET_49 = load_builtin("spinenet-49")


class RecordingMediaStorage(MemoryMediaFileStorage):
    """Streamlit's own in-memory media storage, remembered so a test can read what a download button serves."""

    instances: list["RecordingMediaStorage"] = []

    def __init__(self, media_endpoint: str) -> None:
        super().__init__(media_endpoint)
        RecordingMediaStorage.instances.append(self)


@pytest.fixture(autouse=True)
def recorded_media(monkeypatch):
    """AppTest's media storage kept reachable for download checks."""
    RecordingMediaStorage.instances.clear()
    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", RecordingMediaStorage)


def start(query: dict | None = None) -> AppTest:
    """Runs the app once, as a browser opening the page (with `query` as URL parameters, e.g. {'ws': id})."""
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.query_params.update(query or {})
    return run(app)


def open_tab(app: AppTest, label: str) -> AppTest:
    app.session_state["tab"] = label
    return run(app)


def widget(widgets, label: str):
    """Returns the one widget in `widgets` (e.g. app.selectbox) with this label."""
    found = [item for item in widgets if item.label == label]
    assert len(found) == 1, f"{len(found)} widgets labelled {label!r} among {[item.label for item in widgets]}"
    return found[0]


def totals(app: AppTest) -> dict[str, str]:
    """Returns the six figures of the Explore tab's totals."""
    names = ["backbone params", "backbone MACs", "backbone FLOPs", "params", "MACs", "FLOPs"]
    values = [item.value for item in app.metric]
    assert len(values) == len(names), values
    return dict(zip(names, values))


def expected_totals(spec, input_size=640, head="retinanet") -> dict[str, str]:
    result = analyze(spec, input_size, head)
    return {"backbone params": millions(result.backbone_params), "backbone MACs": billions(result.backbone_macs),
            "backbone FLOPs": billions(2 * result.backbone_macs), "params": millions(result.params),
            "MACs": billions(result.macs), "FLOPs": billions(2 * result.macs)}


def shown(elements) -> list[str]:
    """Returns the texts of st.error/st.info/... elements as the user reads them (Markdown escapes removed)."""
    return [re.sub(r"\\(.)", r"\1", item.value) for item in elements]


def errors(app: AppTest) -> list[str]:
    return shown(app.error)


def current(app: AppTest):
    return app.session_state["history"].current


def select_block(app: AppTest, block_id: str) -> AppTest:
    widget(app.selectbox, "Block to edit").set_value(block_id)
    return run(app)


def download(app: AppTest, label: str) -> bytes:
    button = widget(app.download_button, label)
    return RecordingMediaStorage.instances[-1].get_file(os.path.basename(button.proto.url)).content


def test_first_visit_shows_spinenet_49_with_exact_totals(home):
    app = start()
    assert current(app) == SPINENET_49
    # The paper's SpineNet-49 at 640 with RetinaNet: 28.5M params, 85.4B MACs; the counter's exact figures:
    assert totals(app) == expected_totals(SPINENET_49) and totals(app)["params"] == "28.54M"
    figure = next(f for f in figures(app)
                  if any(trace.get("name") == "blocks" for trace in f["data"]))
    nodes = next(trace for trace in figure["data"] if trace.get("name") == "blocks")
    assert [custom[0] for custom in nodes["customdata"]] == ["stem0", "stem1"] + list(SPINENET_49.block_ids)
    workspace = app.query_params["ws"]
    store = WorkspaceStore(home / WORKSPACE_FILE)
    assert store.load(workspace).current == SPINENET_49


def test_pick_a_builtin_then_undo_and_redo(home):
    app = start()
    widget(app.selectbox, "Built-in architecture").set_value("resnet50-fpn")
    widget(app.button, "Open").click()
    run(app)
    resnet = load_builtin("resnet50-fpn")
    assert current(app) == resnet
    assert totals(app) == expected_totals(resnet)
    widget(app.button, "Undo").click()
    run(app)
    assert current(app) == SPINENET_49 and totals(app) == expected_totals(SPINENET_49)
    widget(app.button, "Redo").click()
    run(app)
    assert current(app) == resnet


def test_edit_level_through_widgets_updates_the_numbers_and_the_diff(home):
    app = open_tab(start(), "Edit")
    select_block(app, "b7")
    assert widget(app.selectbox, "Level").value == 4
    widget(app.selectbox, "Level").set_value(5)
    run(app)
    edited = set_level(SPINENET_49, "b7", 5)
    assert current(app) == edited
    assert any(r"relevelled b7: L4 → L5" in item.value for item in app.markdown)
    change = analyze(edited, 640, "retinanet").macs - analyze(SPINENET_49, 640, "retinanet").macs
    diff_table = app.dataframe[-1].value
    assert diff_table.loc[diff_table["figure"] == "MACs with head (B)", "change"].item() == pytest.approx(change / 1e9)
    open_tab(app, "Explore")
    assert totals(app) == expected_totals(edited) != expected_totals(SPINENET_49)


def test_rejected_edits_say_why_and_keep_the_last_valid_spec(home):
    app = open_tab(start(), "Edit")
    select_block(app, "b12")  # the P4 output
    widget(app.selectbox, "Level").set_value(5)
    run(app)
    assert errors(app) == ["Edit rejected: block 'b12' is the P4 output; at level 5 it would be a second output "
                           "beside 'b14' (and P4 would have none)"]
    assert current(app) == SPINENET_49
    assert widget(app.selectbox, "Level").value == 4  # the widget shows the spec again, not the rejected value
    select_block(app, "b5")
    widget(app.button, "Move earlier").click()
    run(app)
    assert errors(app) == ["Edit rejected: cannot move 'b5' before 'b4': 'b4' is its parent and must come earlier"]
    select_block(app, "b6")
    widget(app.button, "Delete").click()
    run(app)
    assert errors(app) == ["Edit rejected: cannot delete 'b6': 'b8', 'b9' use it as a parent (rewire them first, "
                           "or delete with rewiring)"]
    widget(app.selectbox, "Parent 2").set_value("b3")  # b6's parents are b3, b5
    run(app)
    assert errors(app) == ["Edit rejected: block 'b6': both parents are 'b3'; a block needs two different parents"]
    assert widget(app.selectbox, "Parent 2").value == "b5"
    assert current(app) == SPINENET_49


def test_block_operations_and_history(home):
    app = open_tab(start(), "Edit")
    select_block(app, "b9")
    widget(app.button, "Insert after").click()
    run(app)
    assert current(app).block_ids.index("b17") == current(app).block_ids.index("b9") + 1
    assert widget(app.selectbox, "Block to edit").value == "b17"  # the new block is selected
    widget(app.selectbox, "Block type").set_value("bottleneck")
    run(app)
    widget(app.checkbox, "P7 output").check()
    run(app)
    assert current(app).block("b17").is_output and not current(app).block("b15").is_output
    select_block(app, "b6")
    widget(app.button, "Delete + rewire").click()
    run(app)
    assert "b6" not in current(app).block_ids and current(app).block("b8").parents == ("b3", "b7")
    history = app.session_state["history"]
    assert [entry.description for entry in history.entries[1:]] == [
        "insert b17 after b9", "b17: type residual → bottleneck", "b17: becomes the P7 output",
        "delete b6 (children rewired)"]
    for _ in range(4):
        widget(app.button, "Undo").click()
        run(app)
    assert current(app) == SPINENET_49
    assert widget(app.button, "Undo").disabled


def test_table_editor_applies_a_valid_table_and_refuses_an_invalid_one(home):
    app = open_tab(start(), "Edit")
    app.session_state["block_table_open"] = True  # the table is drawn only while its expander is open
    editor = run(app).data_editor[0]
    app.session_state[editor.key] = {"edited_rows": {5: {"level": 5}}, "added_rows": [], "deleted_rows": []}
    widget(app.button, "Apply table").click()
    run(app)
    assert current(app) == set_level(SPINENET_49, "b7", 5)
    editor = app.data_editor[0]
    pending = {"edited_rows": {0: {"parent1": "b9"}, 3: {"level": 6}}, "added_rows": [], "deleted_rows": []}
    app.session_state[editor.key] = pending
    widget(app.button, "Apply table").click()
    run(app)
    # Named as the table labels it (row 1, column "parent 2"), not as the spec's fields (block 'b2', parents[1]).
    assert [re.sub(r"\\(.)", r"\1", line) for line in errors(app)] == [
        "Edit rejected: row 1 ('b2'): column \"parent 2\": 'b9' does not exist before this block (a parent must "
        "come earlier)"]
    assert current(app) == set_level(SPINENET_49, "b7", 5)
    # The refused table stays as the user left it: the same editor, with every pending edit.
    assert app.data_editor[0].key == editor.key and app.session_state[editor.key] == pending


def test_compare_defaults_to_resnet50_fpn_with_ratios_and_published_figures(home):
    app = open_tab(start(), "Compare")
    table = app.dataframe[0].value
    assert list(table["model"]) == ["SpineNet-49", "ResNet-50-FPN"]
    spinenet, resnet = analyze(SPINENET_49, 640, "retinanet"), analyze(load_builtin("resnet50-fpn"), 640, "retinanet")
    assert table["MACs with head (B)"].tolist() == pytest.approx([spinenet.macs / 1e9, resnet.macs / 1e9])
    assert table["MACs ratio"].tolist() == ["1.00x", f"{resnet.macs / spinenet.macs:.2f}x"]
    assert table["published params (M)"].tolist() == [28.5, 34.0]
    assert table["published AP"].tolist() == [42.8, 40.4]
    assert resnet.macs > spinenet.macs and resnet.params > spinenet.params  # the paper's claim, measured
    graphs = figures(app)
    assert len(graphs) >= 3  # two graphs side by side and the MACs-vs-params plot
    widget(app.multiselect, "Compare the current spec with").set_value(["resnet50-fpn", "spinenet-96"])
    run(app)
    assert list(app.dataframe[0].value["model"]) == ["SpineNet-49", "ResNet-50-FPN", "SpineNet-96"]


@pytest.mark.parametrize("fmt, label", [("json", "JSON (.json)"), ("yaml", "YAML (.yaml)"),
                                        ("tuples", "tuple list (.txt)")])
def test_exported_spec_bytes_reimport_to_the_same_spec(home, fmt, label):
    app = open_tab(start(), "Edit")
    select_block(app, "b7")
    widget(app.selectbox, "Level").set_value(5)
    run(app)
    edited = current(app)
    app = open_tab(app, "Import / export")
    data = download(app, label)
    assert loads(data, fmt, base=SPINENET_49) == edited
    widget(app.button, "Undo").click()
    run(app)
    assert current(app) == SPINENET_49
    app.file_uploader[0].upload(f"mine.{ 'txt' if fmt == 'tuples' else fmt}", data, "text/plain")
    run(app)
    if fmt == "tuples":  # a bare block list: the scaling shown above the uploader (the open spec's), named for it
        assert current(app) == replace(edited, name="Tuple list (SpineNet-49 scaling)") and not errors(app)
        assert shown(app.success) == ["Imported 15 blocks from mine.txt with the scaling of SpineNet-49 (endpoint "
                                      "filters 256, filter size scale 1, resample alpha 0.5, block repeats 1; input "
                                      "640 px), outputs P3-P7, named \"Tuple list (SpineNet-49 scaling)\"."]
    else:
        assert current(app) == edited and not errors(app)
        assert "Opened SpineNet-49." in shown(app.success)


def test_other_exports_are_well_formed(home):
    app = open_tab(start(), "Import / export")
    page = download(app, "Interactive HTML").decode()
    assert page.startswith("<!doctype html>") and "<title>SpineNet-49 · SpineScope</title>" in page
    assert "<script src=" not in page and len(page) > 1_000_000  # plotly.js embedded: works offline
    report = download(app, "Markdown report").decode()
    assert "| **total** | **28.54M** | **85.28B** |" in report
    assert "## Published figures" in report and "28.5M params, 85.4B MACs" in report


def test_bad_upload_and_paste_show_one_line_and_keep_the_spec(home):
    app = open_tab(start(), "Import / export")
    app.file_uploader[0].upload("broken.json", b'{"name": "x", "family": "spinenet", ', "application/json")
    run(app)
    assert errors(app) == ["Import failed (broken.json): invalid JSON at line 1, column 37: Expecting property name "
                           "enclosed in double quotes"]
    assert current(app) == SPINENET_49
    app.file_uploader[0].upload("garbage.yaml", bytes(range(256)), "application/x-yaml")
    run(app)
    assert errors(app)[0].startswith("Import failed (garbage.yaml): ")
    widget(app.text_area, "…or paste one").input("[(2, 'bottleneck', (0, 1), False), (4, 'residual', (0, 5), False)]")
    widget(app.button, "Import pasted text").click()
    run(app)
    assert errors(app) == ["Import failed (pasted text): tuple list: entry 2 has input offset 5; it must index an "
                           "earlier block (0..2)"]
    assert current(app) == SPINENET_49
    assert widget(app.text_area, "…or paste one").value.startswith("[(2, 'bottleneck'")  # nothing typed is lost


def test_a_refresh_keeps_the_edited_spec_and_sessions_are_isolated(home):
    app = open_tab(start(), "Edit")
    select_block(app, "b7")
    widget(app.selectbox, "Level").set_value(6)
    run(app)
    edited = current(app)
    workspace = app.query_params["ws"]
    refreshed = start({"ws": workspace})  # a browser refresh: same URL, new session
    assert current(refreshed) == edited and refreshed.session_state["history"].can_undo
    other = start()  # another browser: no workspace id in its URL
    assert other.query_params["ws"] != workspace and current(other) == SPINENET_49


def test_designs_are_shared_by_name(home):
    app = open_tab(start(), "Edit")
    select_block(app, "b7")
    widget(app.selectbox, "Level").set_value(6)
    run(app)
    widget(app.text_input, "Save the current spec as").input("my <b>design</b>")
    widget(app.button, "Save design").click()
    run(app)
    assert shown(app.success) == ["Saved design “my <b>design</b>”."]
    other = AppTest.from_file(str(APP), default_timeout=60)  # another tab of the same browser (designs are
    other.session_state["browser_id"] = app.session_state["browser_id"]  # per browser: test_designs_owner.py)
    other = run(other)
    assert current(other) == SPINENET_49
    widget(other.selectbox, "Saved designs").set_value("my <b>design</b>")
    widget(other.button, "Open design").click()
    run(other)
    assert current(other) == set_level(SPINENET_49, "b7", 6)


@pytest.mark.parametrize("name", ["spinenet-190", "spinenet-mobile-49xs", "resnet152-fpn"])
def test_every_tab_renders_for_each_family(home, name):
    app = start()
    widget(app.selectbox, "Built-in architecture").set_value(name)
    widget(app.button, "Open").click()
    run(app)
    spec = load_builtin(name)
    assert current(app) == spec and widget(app.number_input, "Input size (pixels)").value == spec.input_size
    assert totals(app) == expected_totals(spec, spec.input_size)
    for tab in ("Edit", "Compare", "Import / export", "Explore"):
        open_tab(app, tab)
        assert not errors(app), (tab, errors(app))


def test_opening_a_built_in_says_that_the_input_size_is_now_its_own(home):
    app = start()
    widget(app.number_input, "Input size (pixels)").set_value(320)
    widget(app.number_input, "Height (empty: square)").set_value(512)
    run(app)
    widget(app.selectbox, "Built-in architecture").set_value("spinenet-mobile-49")
    widget(app.button, "Open").click()
    run(app)
    assert shown(app.success) == ["Opened Mobile SpineNet-49. The input size is now its own, 384 px (was 320x512 "
                                  "px)."]
    assert widget(app.number_input, "Input size (pixels)").value == 384
    widget(app.selectbox, "Built-in architecture").set_value("spinenet-49s")
    widget(app.button, "Open").click()
    run(app)
    assert shown(app.success) == ["Opened SpineNet-49S. The input size is now its own, 640 px (was 384 px)."]


def test_onnx_is_built_on_request_and_downloadable(home):
    app = start()
    widget(app.number_input, "Input size (pixels)").set_value(96)
    widget(app.selectbox, "Head (for 'backbone + head')").set_value("classification")
    run(app)
    app = open_tab(app, "Import / export")
    widget(app.button, "Build ONNX model").click()
    run(app)
    assert not errors(app)
    button = next(item for item in app.download_button if item.label.startswith("ONNX ("))
    data = RecordingMediaStorage.instances[-1].get_file(os.path.basename(button.proto.url)).content
    model = onnx.load_from_string(data)
    assert [output.name for output in model.graph.output] == ["logits"]
    assert model.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 1000
    assert [dim.dim_value for dim in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 96, 96]


def test_figures_can_be_verified_by_fvcore_in_the_background(home):
    app = start()
    widget(app.number_input, "Input size (pixels)").set_value(64)
    run(app)
    widget(app.button, "Verify with fvcore").click()
    run(app)
    deadline = time.monotonic() + 120
    while any("fvcore is tracing a real model" in item.value for item in app.caption) and time.monotonic() < deadline:
        time.sleep(0.5)
        run(app)
    assert any("verified by fvcore: every block's params and MACs are identical" in item.value
               for item in app.caption), [item.value for item in app.caption]


def test_a_click_on_a_button_drawn_for_an_older_spec_does_nothing(home):
    """Another tab on the same workspace (or a replayed click) must not undo or move what this page never showed."""
    app = open_tab(start(), "Edit")
    select_block(app, "b7")
    widget(app.selectbox, "Level").set_value(5)
    run(app)
    other_tab = start({"ws": app.query_params["ws"]})
    widget(other_tab.button, "Undo").click()
    run(other_tab)
    assert current(other_tab) == SPINENET_49
    widget(app.button, "Undo").click()  # drawn when b7 was at level 5: the workspace has changed since
    run(app)
    assert shown(app.info) == ["Nothing done: the spec changed after that button was shown. Click it again if you "
                               "meant it."]
    assert current(app) == SPINENET_49 and app.session_state["history"].can_redo
    assert widget(app.button, "Undo").disabled  # redrawn for the current spec: nothing left to undo


def test_another_tabs_edit_over_an_undone_one_shows_up_in_this_tab(home):
    """The other tab undoes this tab's edit and edits in its place: this tab's next run shows the other's history."""
    app = open_tab(start(), "Edit")
    select_block(app, "b7")
    widget(app.selectbox, "Level").set_value(6)
    run(app)
    other_tab = open_tab(start({"ws": app.query_params["ws"]}), "Edit")
    widget(other_tab.button, "Undo").click()
    select_block(run(other_tab), "b7")
    widget(other_tab.selectbox, "Level").set_value(3)
    run(other_tab)
    run(app)
    assert current(app) == set_level(SPINENET_49, "b7", 3) == current(other_tab)
    assert [entry.spec for entry in app.session_state["history"].entries] == [SPINENET_49, current(other_tab)]


def test_a_hostile_table_state_gives_one_line_errors_and_changes_nothing(home):
    """An edit state no browser would send (row 99 of 15) breaks the table widget and the Apply callback alike:
    both failures are one line each, the rest of the page works and the spec stays."""
    app = open_tab(start(), "Edit")
    app.session_state["block_table_open"] = True  # the table is drawn only while its expander is open
    editor = run(app).data_editor[0]
    app.session_state[editor.key] = {"edited_rows": {99: {"level": 5}}, "added_rows": [], "deleted_rows": []}
    widget(app.button, "Apply table").click()
    run(app)
    assert sorted(errors(app)) == ["Something went wrong in the block table: index 99 is out of bounds for axis 0 "
                                   "with size 15", "Something went wrong: list index out of range"]
    assert current(app) == SPINENET_49
    assert widget(app.button, "Apply scaling")  # the parts after the table still render
