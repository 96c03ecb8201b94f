"""A height x width input in the app: the sidebar's height field makes every figure follow (totals, block table,
graph axis, ONNX input), it survives a refresh, and a new built-in goes back to its own square size."""
from __future__ import annotations

import onnx

from spinescope.spinenet.builtins import load_builtin

from test_app_flows import (RecordingMediaStorage, SPINENET_49, errors, expected_totals, open_tab, recorded_media,  # noqa: F401
                            run, start, totals, widget)


def set_size(app, width: int, height: int | None):
    widget(app.number_input, "Input size (pixels)").set_value(width)
    if height is not None:  # AppTest has no empty field: None would become the minimum
        widget(app.number_input, "Height (empty: square)").set_value(height)
    return run(app)


def test_height_and_width_reach_every_figure(home):
    app = set_size(start(), 1333, 800)
    assert totals(app) == expected_totals(SPINENET_49, (800, 1333))
    assert totals(app)["MACs"] != expected_totals(SPINENET_49, 1333)["MACs"]
    assert any("at 1333x800 px" in item.value for item in app.caption), [item.value for item in app.caption]
    table = next(frame.value for frame in app.dataframe if "size px (W×H)" in frame.value.columns)
    sizes = dict(zip(table["id"], table["size px (W×H)"]))
    assert sizes["b2"] == "334×200" and sizes["b9"] == "11×7"  # ceil(1333 / 4) x ceil(800 / 4), level 7
    refreshed = start({"ws": app.query_params["ws"]})
    assert widget(refreshed.number_input, "Height (empty: square)").value == 800
    assert totals(refreshed) == totals(app)
    square = set_size(refreshed, 640, 640)  # a height equal to the width is the square input
    assert totals(square) == expected_totals(SPINENET_49, 640)


def test_onnx_input_is_height_by_width(home):
    app = set_size(start(), 160, 96)
    widget(app.selectbox, "Head (for 'backbone + head')").set_value("classification")
    app = open_tab(run(app), "Import / export")
    widget(app.button, "Build ONNX model").click()
    run(app)
    assert not errors(app)
    button = next(item for item in app.download_button if item.label.startswith("ONNX ("))
    data = RecordingMediaStorage.instances[-1].get_file(button.proto.url.rsplit("/", 1)[-1]).content
    dims = [dim.dim_value for dim in onnx.load_from_string(data).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 96, 160]



def test_opening_a_built_in_goes_back_to_its_own_square_size(home):
    app = set_size(start(), 1333, 800)
    widget(app.selectbox, "Built-in architecture").set_value("resnet50-fpn")
    widget(app.button, "Open").click()
    app = run(app)
    assert widget(app.number_input, "Height (empty: square)").value is None
    assert totals(app) == expected_totals(load_builtin("resnet50-fpn"), 640)
