"""The app with a spec of Model Garden semantics: the sidebar says so, the dead block is not drawn and the notes
say it is not built, in Explore and in Edit."""
from __future__ import annotations

import re
from dataclasses import replace

from app_runs import figures
from p2_specs import model_garden_spec
from spinescope.app.workspace import WORKSPACE_FILE, WorkspaceStore
from test_app_flows import open_tab, start


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
