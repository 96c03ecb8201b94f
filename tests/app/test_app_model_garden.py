"""The app with a spec of Model Garden semantics: the sidebar says so, the dead block is not drawn and the notes
say it is not built, in Explore and in Edit."""
from __future__ import annotations

import re
from dataclasses import replace

from app_runs import figures
from p2_specs import model_garden_spec
from spinescope.app.workspace import WORKSPACE_FILE, WorkspaceStore
from test_app_flows import open_tab, run, start


def _plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def test_model_garden_semantics_in_the_sidebar_graph_and_notes(home):
    spec = replace(model_garden_spec(3), semantics="model_garden")
    app = start({"ws": WorkspaceStore(home / WORKSPACE_FILE).create(spec, "test")})
    captions = [_plain(item.value) for item in app.sidebar.caption]
    assert any(text.startswith("Semantics: **Model Garden** (TF2") for text in captions), captions
    nodes = next(trace for figure in figures(app) for trace in figure["data"] if trace.get("name") == "blocks")
    ids = [custom[0] for custom in nodes["customdata"]]
    assert "b16" in ids and "b17" not in ids  # not built, so not drawn
    captions = [_plain(item.value) for item in app.caption]
    assert any("Dead block, not built (Model Garden semantics drops what reaches no output" in text
               and "b17 feeds no block and is not an output" in text for text in captions), captions

    app = open_tab(app, "Edit")  # the block editor offers the graph's blocks; the note says why b17 is not there
    captions = [_plain(item.value) for item in app.caption]
    assert any("Dead block, not built (Model Garden semantics" in text for text in captions), captions


def test_the_semantics_edit_changes_the_model_and_undo_restores_it(home):
    app = start({"ws": WorkspaceStore(home / WORKSPACE_FILE).create(model_garden_spec(3), "test")})
    app = open_tab(app, "Edit")
    radio = app.radio(key="edit_semantics")
    assert radio.value == "reference"
    radio.set_value("model_garden")
    run(app)
    infos = [_plain(item.value) for item in app.info]
    assert any("semantics reference -> model_garden: 21,968,640 -> 21,831,488 params; dead block b17 not built"
               in text for text in infos), infos
    assert any(_plain(item.value).startswith("Semantics: **Model Garden**") for item in app.sidebar.caption)
    app.sidebar.button(key="undo").click()
    run(app)
    assert app.radio(key="edit_semantics").value == "reference"
    assert not any(_plain(item.value).startswith("Semantics: **Model Garden**") for item in app.sidebar.caption)


def test_the_markdown_report_names_the_semantics_and_dead_blocks():
    from spinescope.analysis.counting import analyze
    from spinescope.app.exports import markdown_report
    from spinescope.spinenet.builtins import load_builtin

    garden = replace(model_garden_spec(3), semantics="model_garden")
    text = markdown_report(garden, analyze(garden)).decode()
    assert ("\nModel Garden semantics (TF2 tensorflow/models; docs/spinenet-facts.md, section 14). Dead blocks (not "
            "built): b17 feeds no block and is not an output.\n") in text
    reference = model_garden_spec(3)
    assert "Dead blocks (built, params counted, 0 MACs): b17" in markdown_report(reference, analyze(reference)).decode()
    builtin = load_builtin("spinenet-49")
    assert "semantics" not in markdown_report(builtin, analyze(builtin)).decode().split("## Totals")[0]
