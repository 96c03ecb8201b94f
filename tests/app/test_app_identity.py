"""An edited spec's identity in the app (AppTest: the real script, a real SQLite workspace): a spec edited from a
built-in keeps the built-in's name in its data, so the app shows it as 'NAME, edited · HASH' in Compare, the Edit
header, the export file names and the report title, until it is renamed or undone back to the built-in. A tuple
list pasted onto an open tuple-list spec is named after the same scaling, not nested. The expected hash is the
first 8 hex digits of SHA-256 over the spec's JSON without its name, computed here."""
from __future__ import annotations

import hashlib
import json
import os
import re

from spinescope.app.identity import display_name
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import rename, set_level
from spinescope.spinenet.formats import dumps
from spinescope.spinenet.spec import spec_to_dict
from test_app_flows import (RecordingMediaStorage, current, errors, open_tab, run, select_block, start,
                            widget)
from test_app_flows import recorded_media  # noqa: F401 - the download buttons' storage, kept for reading

SPINENET_49 = load_builtin("spinenet-49")


def content_hash(spec) -> str:
    data = spec_to_dict(spec)
    del data["name"]
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:8]


def served(app, label: str):
    """The file a download button serves (its bytes and file name)."""
    button = widget(app.download_button, label)
    return RecordingMediaStorage.instances[-1].get_file(os.path.basename(button.proto.url))


def plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def edit_b7_to_level_5():
    """Returns (the app on its Edit tab, the edited spec, the name the app must show for it): SpineNet-49 with b7
    moved to level 5 from the Edit tab, its name unchanged."""
    app = open_tab(start(), "Edit")
    select_block(app, "b7")
    widget(app.selectbox, "Level").set_value(5)
    run(app)
    edited = current(app)
    return app, edited, f"SpineNet-49, edited · {content_hash(edited)}"


def test_display_name_marks_an_edited_built_in_and_only_that():
    edited = set_level(SPINENET_49, "b7", 5)
    assert display_name(SPINENET_49) == "SpineNet-49"
    assert display_name(edited) == f"SpineNet-49, edited · {content_hash(edited)}"
    assert display_name(rename(edited, "my net")) == "my net"
    # A name of another built-in on this architecture is not that built-in either.
    assert display_name(rename(edited, "SpineNet-96")) == f"SpineNet-96, edited · {content_hash(edited)}"
    # Against the spec the edits started from: an edited import keeps the import's name.
    imported = rename(SPINENET_49, "Tuple list (SpineNet-49 scaling)")
    assert display_name(imported, imported) == "Tuple list (SpineNet-49 scaling)"
    assert display_name(rename(edited, imported.name), imported) == (f"Tuple list (SpineNet-49 scaling), edited · "
                                                                     f"{content_hash(edited)}")


def test_an_edited_built_in_is_named_as_edited_in_compare_edit_exports_and_the_report(home):
    app, edited, name = edit_b7_to_level_5()
    assert edited.name == "SpineNet-49" and edited != SPINENET_49
    assert plain(app.markdown[0].value) == f"#### Editing {name}"
    assert any(item.value.startswith("Edited from the spec of the same name") for item in app.caption)
    app = open_tab(app, "Compare")
    assert list(app.dataframe[0].value["model"]) == [name, "ResNet-50-FPN"]
    assert set(app.dataframe[1].value["model"]) == {name, "ResNet-50-FPN"}
    for table in app.dataframe[:2]:  # wide enough for the name at 7 px a character and 8 px padding a side
        assert json.loads(table.proto.columns)["model"]["width"] >= 7 * len(name) + 16
    app = open_tab(app, "Import / export")
    stem = f"spinenet-49-edited-{content_hash(edited)}"
    assert served(app, "JSON (.json)").filename == f"{stem}.json"
    report = served(app, "Markdown report")
    assert report.filename == f"{stem}-report.md"
    assert report.content.decode().splitlines()[0] == f"# {name}"
    # Renamed, it is shown by its own name; undone to the built-in, by the built-in's.
    app = open_tab(app, "Edit")
    widget(app.text_input, "Spec name").input("my net")
    widget(app.button, "Rename").click()
    run(app)
    assert plain(app.markdown[0].value) == "#### Editing my net" and not errors(app)
    assert not any(item.value.startswith("Edited from") for item in app.caption)
    for _ in range(2):
        widget(app.button, "Undo").click()
        run(app)
    assert current(app) == SPINENET_49
    app = open_tab(app, "Compare")
    assert list(app.dataframe[0].value["model"]) == ["SpineNet-49", "ResNet-50-FPN"]


def paste(app, text: str):
    widget(app.text_area, "…or paste one").input(text)
    widget(app.button, "Import pasted text").click()
    return run(app)


def test_pasting_a_tuple_list_onto_a_tuple_list_spec_does_not_nest_its_name(home):
    app = open_tab(start(), "Import / export")
    tuples = dumps(SPINENET_49, "tuples")
    for _ in range(3):
        paste(app, tuples)
        assert not errors(app)
        assert current(app).name == "Tuple list (SpineNet-49 scaling)"
    assert current(app).with_blocks(()) == rename(SPINENET_49, "Tuple list (SpineNet-49 scaling)").with_blocks(())
    # A scaling of the open spec's own (not a built-in's) still names the list after that spec.
    app = open_tab(app, "Edit")
    widget(app.text_input, "Spec name").input("wide one")
    widget(app.button, "Rename").click()
    run(app)
    app = open_tab(app, "Import / export")
    paste(app, tuples)
    paste(app, tuples)
    assert current(app).name == "Tuple list (wide one scaling)"


def test_a_sweep_of_the_edited_spec_labels_its_points_and_history_rows_as_edited(home):
    from spinescope.analysis.latency.history import list_results
    from test_app_sweep import start as start_sweep, wait

    app, edited, name = edit_b7_to_level_5()
    app = open_tab(app, "Sweeps")
    widget(app.text_input, "Input sizes (px, comma list)").set_value("64")
    widget(app.number_input, "Timed iterations").set_value(1)
    widget(app.number_input, "Warm-up iterations").set_value(0)
    widget(app.number_input, "CPU threads (0 = default)").set_value(1)
    widget(app.selectbox, "Device").set_value("cpu")
    next(item for item in app.multiselect if item.label.startswith("Models")).set_value(["current spec"])
    wait(start_sweep(run(app)))
    frame = next(item.value for item in app.dataframe if "GMACs per pass" in item.value)
    assert list(frame["model"]) == [name]
    [entry] = list_results(path=home / "history.sqlite")
    assert (entry.spec_name, entry.spec_hash[:8]) == (name, content_hash(edited))


def test_an_edited_built_in_is_named_as_edited_in_the_sidebar_explore_memory_and_latency(home):
    app, edited, name = edit_b7_to_level_5()
    assert any(plain(item.value).startswith(f"**Current:** {name}") for item in app.sidebar.markdown)
    app = open_tab(app, "Explore")
    assert any(plain(item.value).startswith(f"{name} at ") for item in app.caption)
    app.session_state["explore_details"] = "Scale profile"  # only the open view is drawn
    run(app)
    profile = next(json.loads(chart.proto.spec) for chart in app.get("plotly_chart")
                   if json.loads(chart.proto.spec)["layout"]["yaxis"]["title"]["text"] == "level")
    assert [trace["name"] for trace in profile["data"]] == ["ResNet-50-FPN", name]
    app = open_tab(app, "Memory")
    assert any(plain(item.value).startswith(f"{name} (") for item in app.caption)
    blocks = next(item.value for item in app.dataframe if "activations MiB" in item.value)
    # Short names that fit the narrow column: the stem conv, the blocks by id, the endpoints, the head.
    assert list(blocks["block"]) == ["stem_conv", "stem0", "stem1", *(b.id for b in edited.blocks), "endpoints",
                                     "head"]
    assert f"{name} max batch" in app.dataframe[-1].value.columns  # the frame (and CSV) keep the full name
    headers = {key: config.get("label") for key, config in json.loads(app.dataframe[-1].proto.columns).items()}
    # A 110 px column holds about 12 characters at 7.4 px each plus padding: the long name gives way to a short one.
    assert (headers[f"{name} max batch"], headers["ResNet-50-FPN max batch"]) == ("current spec", "ResNet-50-FPN")
    app = open_tab(app, "Latency")
    models = next(item for item in app.multiselect if item.label.startswith("Models"))
    assert f"current spec ({name})" in models.options


def test_the_edit_history_lists_forty_entries_around_the_current_one_numbered_from_one(home):
    from spinescope.app.workspace import WORKSPACE_FILE, WorkspaceStore

    app = start()
    workspace = app.query_params["ws"]
    store = WorkspaceStore(home / WORKSPACE_FILE)
    for index in range(2, 101):  # entries 2..100 after the opening one
        store.push(workspace, rename(SPINENET_49, f"net {index}"), f"step {index}")
    store.move_cursor(workspace, -60)  # back to entry 40
    app = open_tab(start({"ws": workspace}), "Edit")
    listing = next(plain(item.value) for item in app.markdown if "▶" in item.value)
    lines = listing.splitlines()
    assert len(lines) == 40 and lines[0] == "20. step 20" and lines[-1] == "59. step 59"
    assert "40. ▶ **step 40**" in lines
