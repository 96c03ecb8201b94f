"""The graph figure without a browser: a handful of traces whatever the size, one arrowhead per connection placed
at its target's border, connection hover with the resampling and its cost (checked against the counter's
per-block resampling cost), repeat stacks, block ids, the selection ring and legends per colour mode."""
from __future__ import annotations

import pytest

from spinescope.analysis.counting import analyze
from spinescope.app.graph_figure import (ARROW_TRACE_NAME, CONNECTION_HOVER_NAME, NODE_TRACE_NAME, REPEAT_TRACE_NAME, SELECTED_COLOUR,
                              SHAPE_ONLY_COLOUR, TYPE_STYLE, edge_costs, graph_figure)
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.graph import to_graph
from spinescope.spinenet.spec import spec_to_dict
from spinescope.spinenet.validate import LIMITS, parse_spec

SPINENET_49 = load_builtin("spinenet-49")


def costs_of(spec, size):
    result = analyze(spec, size)
    return {block.id: {"params": block.params, "macs": block.macs, "share": block.macs / result.backbone_macs,
                       "resample_params": block.resample_params, "resample_macs": block.resample_macs}
            for block in result.blocks}


def trace(figure, name):
    return next(item for item in figure.data if item.name == name)


def largest_resnet():
    data = spec_to_dict(load_builtin("resnet152-fpn"))
    data["stages"] = [LIMITS["max_stage_blocks"]] * 4
    return parse_spec(data)


@pytest.mark.parametrize("spec", [SPINENET_49, load_builtin("resnet152-fpn"), largest_resnet()],
                         ids=["spinenet-49", "resnet152-fpn", "largest-resnet"])
def test_a_few_traces_and_no_annotation_whatever_the_size(spec):
    figure = graph_figure(spec, 640, costs_of(spec, 640))
    graph = to_graph(spec, 640)
    assert len(figure.data) <= 20 and not figure.layout.annotations
    arrows = trace(figure, ARROW_TRACE_NAME)
    tips = [size for size in arrows.marker.size if size]
    assert len(tips) == graph.number_of_edges()
    assert arrows.marker.angleref == "previous"
    nodes = trace(figure, NODE_TRACE_NAME)
    assert [custom[0] for custom in nodes.customdata] == sorted(graph, key=lambda n: graph.nodes[n]["order"])
    # Only the node trace carries customdata (a click anywhere else selects nothing).
    assert [item.name for item in figure.data if item.customdata is not None] == [NODE_TRACE_NAME]


@pytest.mark.parametrize("mode", ["off", "size", "colour"])
def test_every_arrowhead_stands_off_its_target_by_the_targets_radius(mode):
    figure = graph_figure(SPINENET_49, 640, costs_of(SPINENET_49, 640), mode)
    nodes, arrows = trace(figure, NODE_TRACE_NAME), trace(figure, ARROW_TRACE_NAME)
    size_at = {(x, y): size for x, y, size in zip(nodes.x, nodes.y, nodes.marker.size)}
    checked = 0
    for x, y, size, standoff in zip(arrows.x, arrows.y, arrows.marker.size, arrows.marker.standoff):
        if size:
            assert standoff > size_at[(x, y)] / 2  # the tip sits outside the target's marker
            checked += 1
    assert checked == to_graph(SPINENET_49, 640).number_of_edges()
    if mode == "size":
        assert max(nodes.marker.size) > 2 * min(nodes.marker.size)


def test_connection_hover_names_the_resampling_and_its_cost_which_sum_to_the_blocks_resampling():
    spec = SPINENET_49
    result = analyze(spec, 640)
    per_edge = edge_costs(spec, 640)
    graph = to_graph(spec, 640)
    for block in result.blocks:
        if block.role == "block":
            into = [cost["macs"] for (source, target), cost in per_edge.items() if target == block.id]
            assert sum(into) == block.resample_macs, block.id
    figure = graph_figure(spec, 640)
    hover = list(trace(figure, CONNECTION_HOVER_NAME).hovertext)
    stem_to_b3 = next(text for text in hover if text.startswith("<b>stem0 → b3</b>"))
    assert "down x4" in stem_to_b3 and "stride-2 3×3 conv" in stem_to_b3 and "max-pool 3/2" in stem_to_b3
    macs = per_edge[("stem0", "b3")]["macs"]
    assert 1e6 <= macs < 1e9 and f"{macs / 1e6:.2f}M MACs" in stem_to_b3
    assert len({text for text in hover}) == graph.number_of_edges()  # one text per connection


def test_repeats_draw_a_stack_behind_every_node_and_say_so_in_the_legend():
    spec_190 = load_builtin("spinenet-190")
    assert spec_190.scaling.block_repeats == 4
    figure = graph_figure(spec_190, 640)
    stack = trace(figure, REPEAT_TRACE_NAME)
    assert len(stack.x) == 3 * to_graph(spec_190, 640).number_of_nodes()
    assert any("×4" in item.name for item in figure.data if item.legend == "legend2")
    assert "4 × bottleneck" in trace(figure, NODE_TRACE_NAME).hovertext[2]
    assert REPEAT_TRACE_NAME not in {item.name for item in graph_figure(SPINENET_49, 640).data}


def test_ids_label_the_nodes_or_the_axis_when_they_do_not_fit():
    spinenet = graph_figure(SPINENET_49, 640)
    nodes = trace(spinenet, NODE_TRACE_NAME)
    assert list(nodes.text) == [custom[0] for custom in nodes.customdata]
    resnet_spec = load_builtin("resnet152-fpn")
    resnet = graph_figure(resnet_spec, 640)
    nodes = trace(resnet, NODE_TRACE_NAME)
    assert not any(nodes.text)
    ids = [custom[0] for custom in nodes.customdata]
    assert list(resnet.layout.xaxis.ticktext) == ids and list(resnet.layout.xaxis.tickvals) == list(nodes.x)
    assert sum(1 for node in ids if node.startswith("c4_")) == 36
    # Nodes smaller than their spacing at the expected width: the 36 L4 blocks stay separate dots.
    assert max(nodes.marker.size) < 560 / len(ids)


@pytest.mark.parametrize("mode", ["off", "size", "colour"])
def test_the_selection_is_a_ring_around_the_selected_block_in_every_mode(mode):
    figure = graph_figure(SPINENET_49, 640, costs_of(SPINENET_49, 640), mode, selected="b14")
    [ring] = figure.layout.shapes
    node = to_graph(SPINENET_49, 640).nodes["b14"]
    assert (ring.xanchor, ring.yanchor) == (node["order"], node["level"])
    assert ring.line.color == SELECTED_COLOUR and ring.xsizemode == "pixel"
    nodes = trace(figure, NODE_TRACE_NAME)
    index = list(nodes.x).index(node["order"])
    assert ring.x1 > nodes.marker.size[index] / 2
    assert not graph_figure(SPINENET_49, 640, selected=None).layout.shapes


def test_the_block_legend_follows_the_colour_mode():
    costs = costs_of(SPINENET_49, 640)
    for mode in ("off", "size"):
        figure = graph_figure(SPINENET_49, 640, costs, mode)
        legend = {item.name: item.marker.color for item in figure.data if item.legend == "legend2"}
        assert legend["bottleneck"] == TYPE_STYLE["bottleneck"][0] and legend["residual"] == TYPE_STYLE["residual"][0]
        assert trace(figure, NODE_TRACE_NAME).marker.colorbar.title.text is None
    figure = graph_figure(SPINENET_49, 640, costs, "colour")
    legend = {item.name: item.marker.color for item in figure.data if item.legend == "legend2"}
    assert legend["bottleneck"] == legend["residual"] == SHAPE_ONLY_COLOUR
    assert "colour = MACs" in figure.layout.legend2.title.text
    assert trace(figure, NODE_TRACE_NAME).marker.colorbar.title.text == "MACs share"


def test_a_non_square_input_labels_its_levels_width_by_height():
    square, wide = graph_figure(SPINENET_49, 640), graph_figure(SPINENET_49, (512, 320))  # (height, width)
    assert square.layout.yaxis.title.text == "feature level (size at input)"
    assert square.layout.yaxis.ticktext[0] == "L2 · 160px"
    assert wide.layout.yaxis.title.text == "feature level (W×H at input)"
    assert wide.layout.yaxis.ticktext[:2] == ("L2 · 80x128px", "L3 · 40x64px")  # ceil(320 / 4) x ceil(512 / 4)
