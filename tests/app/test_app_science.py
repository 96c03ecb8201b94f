"""Issue 12's science in the app, through AppTest (the real script, a real workspace in a temporary SPINESCOPE_HOME):
min_level 2 (the tuple import's output levels, the editor's lowest output level with undo, the one-line refusal),
the classifier's input length at two input sizes in the sidebar, and the head's share of the MACs in Explore and
Compare. Expected numbers come from hand formulas and the independent count (reference_counts.py)."""
from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

from streamlit.testing.v1 import AppTest

from p2_specs import MODEL_GARDEN_TEXT, model_garden_spec
from reference_counts import resnet_fpn_counts, spinenet_counts
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.formats import import_tuples

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


def rerun(app: AppTest, tab: str | None = None) -> AppTest:
    """Runs the script again (on `tab` when given) and fails on any exception it shows."""
    if tab is not None:
        app.session_state["tab"] = tab
    app.run()
    assert not app.exception, [item.value for item in app.exception]
    return app


def started() -> AppTest:
    return rerun(AppTest.from_file(str(APP), default_timeout=120))


def plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def captions(app: AppTest) -> list[str]:
    return [plain(item.value) for item in app.sidebar.caption]


def selectbox(app: AppTest, label: str):
    return next(item for item in app.selectbox if item.label.startswith(label))


def test_tuple_import_with_min_level_2_then_edit_the_lowest_output_level_with_undo():
    app = rerun(started(), "Import / export")
    selectbox(app, "Scaling for a bare tuple list").set_value("spinenet-49")
    selectbox(app, "Output levels for a bare tuple list").set_value(2)
    rerun(app)
    app.text_area[0].set_value(MODEL_GARDEN_TEXT)
    rerun(app)
    next(item for item in app.button if item.label == "Import pasted text").click()
    rerun(app)
    assert not app.error
    spec = app.session_state["history"].current
    assert spec == import_tuples(MODEL_GARDEN_TEXT, load_builtin("spinenet-49"), min_level=2).spec
    assert (spec.min_level, spec.blocks[-1].is_output) == (2, True)
    assert "outputs P2-P7" in plain(app.success[0].value)

    app = rerun(app, "Edit")
    level = selectbox(app, "Lowest output level")
    assert level.value == "2"
    level.set_value("3")
    rerun(app)
    raised = app.session_state["history"].current
    assert (raised.min_level, raised.blocks[-1].is_output) == (3, False)
    assert "b17 kept without an endpoint" in plain(app.info[0].value)
    assert selectbox(app, "Lowest output level").value == "3"
    # Plain "min level 2" now has no P2 block: refused in one line, the spec stays.
    selectbox(app, "Lowest output level").set_value("2")
    rerun(app)
    [error] = [plain(item.value) for item in app.error]
    assert error == ("Edit rejected: min level 2: no output block at level 2 (P2); choose one of the level-2 "
                     "blocks (b2, b17) as P2")
    assert app.session_state["history"].current == raised and selectbox(app, "Lowest output level").value == "3"
    selectbox(app, "Lowest output level").set_value("2:b17")
    rerun(app)
    assert app.session_state["history"].current == replace(model_garden_spec(2), name=spec.name)
    next(item for item in app.button if item.key == "undo").click()
    rerun(app)
    assert app.session_state["history"].current == raised
    assert selectbox(app, "Lowest output level").value == "3"


def test_spp_length_is_shown_at_two_sizes_and_follows_the_choices():
    app = started()
    assert not [item for item in app.sidebar.selectbox if item.label == "Classifier pooling"]  # RetinaNet: none
    app.sidebar.selectbox(key="head").set_value("classification")
    rerun(app)
    app.sidebar.number_input(key="input_size").set_value(224)
    app.sidebar.selectbox(key="pooling").set_value("spp")
    rerun(app)
    assert any(line.startswith(f"SPP {{4,2,1}}: 256 x {16 + 4 + 1} = {256 * 21:,} inputs at 224 px (28x28 map) and "
                               "at 640 px (80x80 map)") for line in captions(app)), captions(app)
    app.sidebar.number_input(key="input_size").set_value(320)
    app.sidebar.selectbox(key="pooling").set_value("spp:6,3,2,1")
    rerun(app)
    side = math.ceil(320 / 8)
    assert any(line.startswith(f"SPP {{6,3,2,1}}: 256 x 50 = {256 * 50:,} inputs at 320 px ({side}x{side} map) and "
                               "at 224 px (28x28 map)") for line in captions(app)), captions(app)
    assert app.session_state["settings"]["pooling"] == "spp:6,3,2,1"  # kept in the workspace


def test_head_share_in_explore_and_compare():
    app = started()  # SpineNet-49 at 640 px, RetinaNet head
    params, macs, _ = spinenet_counts("spinenet-49", 640, head=True)
    backbone_params, backbone_macs, _ = spinenet_counts("spinenet-49", 640, head=False)
    expected = (f"The RetinaNet head is {100 * (macs - backbone_macs) / macs:.0f}% of the MACs and "
                f"{100 * (params - backbone_params) / params:.0f}% of the params.")
    assert any(expected in plain(item.value) for item in app.caption)
    rerun(app, "Compare")
    frame = next(item.value for item in app.dataframe if "head share of MACs %" in item.value.columns)
    r50_macs = resnet_fpn_counts("resnet50-fpn", 640, head=True)[1]
    r50_backbone_macs = resnet_fpn_counts("resnet50-fpn", 640, head=False)[1]
    assert list(frame["head share of MACs %"])[:2] == [round(100 * (macs - backbone_macs) / macs, 1),
                                                      round(100 * (r50_macs - r50_backbone_macs) / r50_macs, 1)]


def test_the_block_type_whatif_in_explore_shows_the_seeds_numbers():
    """Explore's selected block (b2 by default) as each block type: its MACs per output pixel are the section-13
    figures (bottleneck 69,632; two 3x3 convs 2 x 589,824), and the worked examples are named beside them."""
    app = started()
    assert not any(frame.value.columns[0] == "type" for frame in app.dataframe)  # off until asked for
    next(item for item in app.toggle if item.label == "As other block types").set_value(True)
    rerun(app)
    frame = next(frame.value for frame in app.dataframe if "MACs / pixel" in frame.value.columns)
    per_pixel = dict(zip(frame["type"], frame["MACs / pixel"]))
    assert per_pixel == {"bottleneck (current)": 69_632, "residual": 2 * 589_824,
                         "mbconv": per_pixel["mbconv"]} and per_pixel["mbconv"] > 69_632
    text = " ".join(plain(item.value) for item in app.caption)
    assert "387,072 → 157,184 weights" in text and "589,824 → 69,632 MACs per output pixel" in text
