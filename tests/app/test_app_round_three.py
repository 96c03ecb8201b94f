"""The app, round three, through AppTest (the real script, a real workspace in a temporary SPINESCOPE_HOME):
Compare's outputs (shape and receptive field per level, also relative to the input side) and its graph titles
in width x height; the dead block of the Model Garden's 16-block list (min level 3) marked in the graph and
explained in Explore and Edit; one wording for what a block feeds. Expected values come from hand formulas and
the receptive-field functions on the same specs, never from the page."""
from __future__ import annotations

import math
import re

from p2_specs import model_garden_spec
from spinescope.analysis.architecture.receptive_field import receptive_fields
from spinescope.app.workspace import WORKSPACE_FILE, WorkspaceStore
from spinescope.spinenet.builtins import load_builtin
from app_runs import figures
from test_app_flows import open_tab, run, start, widget

SPINENET_49, RESNET_50 = load_builtin("spinenet-49"), load_builtin("resnet50-fpn")


def plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def opened(home, spec):
    """The app on a workspace that starts with `spec`."""
    return start({"ws": WorkspaceStore(home / WORKSPACE_FILE).create(spec, "test")})


def outputs_frame(app):
    frames = [item.value for item in app.dataframe if "shape (C×H×W)" in item.value.columns]
    assert len(frames) == 1, [list(item.value.columns) for item in app.dataframe]
    return frames[0]


def expected_outputs(spec, height: int, width: int) -> list[tuple]:
    """(level, 'C×H×W', field px, field as a multiple of the input side) by hand: every output has the endpoint
    width (256 channels here) and ceil(side / 2**level) pixels per axis; the field is the receptive-field
    function's, over the side per axis, the smaller of the two."""
    rows = []
    for level in range(3, 8):
        field = receptive_fields(spec, height if height == width else (height, width)).outputs[f"P{level}"]
        field_h, field_w = field.receptive_field_hw
        rows.append((f"P{level}", f"256×{math.ceil(height / 2 ** level)}×{math.ceil(width / 2 ** level)}",
                     field.receptive_field, min(field_h / height, field_w / width)))
    return rows


def shown_outputs(frame, model: str) -> list[tuple]:
    rows = frame[frame["model"] == model]
    return list(zip(rows["output"], rows["shape (C×H×W)"], rows["receptive field px"],
                    rows["receptive field × input side"]))


def test_compare_shows_each_outputs_shape_and_receptive_field_also_relative_to_the_input(home):
    app = open_tab(start(), "Compare")  # SpineNet-49 beside ResNet-50-FPN at 640 px
    frame = outputs_frame(app)
    for spec in (SPINENET_49, RESNET_50):
        shown = shown_outputs(frame, spec.name)
        expected = expected_outputs(spec, 640, 640)
        assert [row[:3] for row in shown] == [row[:3] for row in expected]
        assert [round(row[3], 6) for row in shown] == [round(row[3], 6) for row in expected]
    # SpineNet-49's P3 at 640 px: 256x80x80; its field spans more than twice the image, ResNet-50-FPN's less.
    assert shown_outputs(frame, "SpineNet-49")[0][1] == "256×80×80"
    assert shown_outputs(frame, "SpineNet-49")[0][3] > 2 > 1 > shown_outputs(frame, "ResNet-50-FPN")[0][3]
    titles = sorted(figure["layout"]["title"]["text"] for figure in figures(app)
                    if (figure["layout"].get("title") or {}).get("text", "").endswith(" px"))
    assert titles == ["ResNet-50-FPN · 640 px", "SpineNet-49 · 640 px"]


def test_compare_at_width_by_height_titles_say_1333x800_and_fields_are_relative_to_each_side(home):
    app = start()
    widget(app.number_input, "Input size (pixels)").set_value(1333)
    widget(app.number_input, "Height (empty: square)").set_value(800)
    app = open_tab(run(app), "Compare")
    titles = [figure["layout"]["title"]["text"] for figure in figures(app)
              if "·" in (figure["layout"].get("title") or {}).get("text", "")]
    assert sorted(titles) == ["ResNet-50-FPN · 1333x800 px", "SpineNet-49 · 1333x800 px"]
    frame = outputs_frame(app)
    assert set(frame["input px"]) == {"1333x800"}
    for spec in (SPINENET_49, RESNET_50):
        shown = shown_outputs(frame, spec.name)
        expected = expected_outputs(spec, 800, 1333)
        assert [row[:3] for row in shown] == [row[:3] for row in expected]
        assert [round(row[3], 6) for row in shown] == [round(row[3], 6) for row in expected]
    assert shown_outputs(frame, "SpineNet-49")[0][1] == "256×100×167"  # ceil(800 / 8) x ceil(1333 / 8)


def graph_nodes(app, key_trace: str = "blocks") -> dict:
    """The first architecture graph's node trace on the page (Explore's or Edit's)."""
    figure = next(f for f in figures(app) if any(trace.get("name") == key_trace for trace in f["data"]))
    return figure


def test_the_dead_block_is_hollow_in_the_graph_and_explore_and_edit_say_why(home):
    spec = model_garden_spec(3)  # the 16-block list with min level 3: b17 (level 2) feeds nothing, is no output
    app = opened(home, spec)
    figure = graph_nodes(app)
    nodes = next(trace for trace in figure["data"] if trace.get("name") == "blocks")
    ids = [custom[0] for custom in nodes["customdata"]]
    symbols = dict(zip(ids, nodes["marker"]["symbol"]))
    assert symbols["b17"].endswith("-open")
    assert [node for node, symbol in symbols.items() if symbol.endswith("-open")] == ["b17"]
    hover = dict(zip(ids, nodes["hovertext"]))
    assert "dead: reaches no output" in hover["b17"] and "b17 feeds no block and is not an output" in hover["b17"]
    assert "dead" not in hover["b13"]
    legend = [trace["name"] for trace in figure["data"] if trace.get("legend") == "legend2"]
    assert "dead: reaches no output" in legend
    captions = [plain(item.value) for item in app.caption]
    assert any("Dead block (hollow grey in the graph): b17 feeds no block and is not an output" in text
               for text in captions), captions

    app.selectbox(key="explore_block_box").set_value("b17")
    run(app)
    details = "\n".join(plain(item.value) for item in app.markdown)
    assert "- feeds: nothing" in details
    assert "reaches no output: b17 feeds no block and is not an output" in details

    app = open_tab(app, "Edit")
    captions = [plain(item.value) for item in app.caption]
    assert any(text.startswith("Feeds: nothing. **Dead**, reaches no output: b17 feeds no block and is not an "
                               "output") for text in captions), captions
    assert any("Dead block (hollow grey in the graph): b17" in text for text in captions), captions


def test_the_spinenet_49_built_in_has_no_dead_block(home):
    app = start()
    nodes = next(trace for trace in graph_nodes(app)["data"] if trace.get("name") == "blocks")
    assert not [symbol for symbol in nodes["marker"]["symbol"] if symbol.endswith("-open")]
    assert not [item for item in app.caption if "Dead block" in item.value]


def test_explore_and_edit_say_what_a_block_feeds_in_the_same_words(home):
    # In SpineNet-49's block list (the paper's): b15 is the P7 output and no block's parent; b12 (P4) is a parent
    # of b14 and b16; b4 of b5 and b13; b11 of none, so the 0-outdegree rule adds it into b14, the P5 output.
    app = start()
    for block, words in (("b15", "the P7 output"), ("b12", "b14, b16, the P4 output"), ("b4", "b5, b13"),
                         ("b11", "b14 (0-outdegree merge)")):
        app = open_tab(app, "Explore")
        app.selectbox(key="explore_block_box").set_value(block)
        run(app)
        details = "\n".join(plain(item.value) for item in app.markdown)
        explore = re.search(r"^- feeds: (.*)$", details, re.M).group(1)
        app = open_tab(app, "Edit")
        edit = next(re.match(r"Feeds: (.*?)\. Parents must", text).group(1) for text in
                    (plain(item.value) for item in app.caption) if text.startswith("Feeds: "))
        assert (block, explore) == (block, edit) == (block, words)
