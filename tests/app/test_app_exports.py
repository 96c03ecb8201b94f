"""The app's exports and graph figure without the UI: escaping of user strings, ONNX that loads and checks, images
rendered by Chromium, and a figure with one node per block and one arrow per connection."""

import onnx
import pytest

from spinescope.app.exports import graph_html, graph_image, markdown_report, onnx_bytes, onnx_output_names
from spinescope.app.graph_figure import ARROW_TRACE_NAME, NODE_TRACE_NAME, edge_colour, graph_figure
from spinescope.analysis.counting import analyze
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import rename, set_level
from spinescope.spinenet.graph import to_graph

HOSTILE = "</script><script>alert('x')</script> | **bold** [link](http://x)"


def test_graph_has_one_node_per_block_and_one_arrow_per_connection():
    for name in ("spinenet-49", "resnet50-fpn", "spinenet-mobile-49"):
        spec = load_builtin(name)
        graph = to_graph(spec, 640)
        figure = graph_figure(spec, 640, selected=None)
        nodes = next(trace for trace in figure.data if trace.name == NODE_TRACE_NAME)
        assert [custom[0] for custom in nodes.customdata] == sorted(graph, key=lambda n: graph.nodes[n]["order"])
        assert list(nodes.x) == list(range(len(graph)))
        assert list(nodes.y) == [graph.nodes[n]["level"] for n in sorted(graph, key=lambda n: graph.nodes[n]["order"])]
        arrows = next(trace for trace in figure.data if trace.name == ARROW_TRACE_NAME)
        assert [size for size in arrows.marker.size if size] and len(arrows.x) == 2 * graph.number_of_edges()
    spinenet = graph_figure(load_builtin("spinenet-49"), 640)
    labels = {trace.name: trace for trace in spinenet.data}
    assert labels["0-outdegree merge"].line.dash == "dash"  # b11 -> b14 in SpineNet-49
    assert {"same level", "down x2", "down x4", "down x8", "up x2", "up x4"} <= set(labels)
    nodes = labels[NODE_TRACE_NAME]
    assert list(labels["outputs"].text) == ["<b>P4</b>", "<b>P3</b>", "<b>P5</b>", "<b>P7</b>", "<b>P6</b>"]
    assert edge_colour("down", 4) != edge_colour("down", 2) != edge_colour("up", 2)


def test_macs_share_sets_node_size_or_colour():
    spec = load_builtin("spinenet-49")
    result = analyze(spec, 640)
    costs = {block.id: {"macs": block.macs, "params": block.params, "share": block.macs / result.backbone_macs}
             for block in result.blocks}
    sized = next(t for t in graph_figure(spec, 640, costs, "size").data if t.name == NODE_TRACE_NAME)
    biggest = max(costs, key=lambda node: costs[node]["share"])
    assert sized.marker.size[list(costs).index(biggest)] == max(sized.marker.size)
    coloured = next(t for t in graph_figure(spec, 640, costs, "colour").data if t.name == NODE_TRACE_NAME)
    assert list(coloured.marker.color) == pytest.approx([costs[node]["share"] for node in costs])


def test_user_strings_are_escaped_in_html_and_markdown():
    spec = rename(load_builtin("spinenet-49"), HOSTILE)
    page = graph_html(spec, 256).decode()
    assert "alert('x')</script>" not in page and "<script>alert" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert" in page
    report = markdown_report(spec, analyze(spec, 256, "retinanet")).decode()
    rendered, spec_block = report.split("## Spec (YAML)")
    assert HOSTILE not in rendered and "<script>" not in rendered
    assert "```yaml" in spec_block  # the spec itself, as literal text in a code block
    assert report.splitlines()[0].startswith("# \\</script\\>")


def test_the_scale_profile_names_its_spec_escaped():
    from spinescope.app.explore_tab import scale_profile_figure

    names = [trace.name for trace in scale_profile_figure(rename(load_builtin("spinenet-49"), HOSTILE), 256).data]
    assert names == ["ResNet-50-FPN", "&lt;/script&gt;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; | **bold** [link](http://x)"]


def test_markdown_report_lists_changes_since_the_start():
    base = load_builtin("spinenet-49")
    edited = set_level(base, "b7", 5)
    report = markdown_report(edited, analyze(edited, 640, "retinanet"), base, analyze(base, 640, "retinanet"),
                             {"P3": 1443}).decode()
    # Plain names and the change lines read as they render: no backslash escapes where nothing needs one.
    assert "## Changes since SpineNet-49" in report and "- relevelled b7: L4 → L5" in report
    assert "\\" not in report.split("## Spec (YAML)")[0]
    assert "| P3 | 256×80×80 | 1443 |" in report
    assert "## Published figures" not in report  # no longer the published architecture


def test_onnx_export_checks_and_names_its_outputs(monkeypatch):
    # Every BN's scale 1, as after training: the reference init's zero-scale BNs fold into all-zero conv weights,
    # which the exporter stores once per shape, so the count of stored weights would fall below the params.
    import spinescope.spinenet.init as init

    monkeypatch.setitem(init.INITIALIZERS, "batch_norm", lambda norm, attrs: init.init_batch_norm(norm, {}))
    spec = load_builtin("spinenet-49s")
    data = onnx_bytes(spec, "retinanet", 128)
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    assert [output.name for output in model.graph.output] == onnx_output_names(spec, "retinanet")
    assert [dim.dim_value for dim in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 128, 128]
    weights = sum(_numel(tensor) for tensor in model.graph.initializer)
    params = analyze(spec, 128, "retinanet").params
    assert abs(weights - params) / params < 0.02  # the exporter folds each BN into its conv
    # Honest static shapes: only the image is an input (weights are initializers), and each output's shape is
    # worked out by hand: level l is ceil(128 / 2^l) a side; 9 anchors x 91 classes and 9 x 4 box values.
    assert [item.name for item in model.graph.input] == ["images"]
    expected = []
    for level in range(3, 8):
        side = -(-128 // 2 ** level)
        expected += [[1, 9 * 91, side, side], [1, 9 * 4, side, side]]
    shapes = [[dim.dim_value if dim.HasField("dim_value") else dim.dim_param for dim in output.type.tensor_type.shape.dim]
              for output in model.graph.output]
    assert shapes == expected
    onnx.shape_inference.infer_shapes(model, strict_mode=True)  # consistent with what the graph computes
    # Every intermediate tensor is described, with numbers only (no symbolic dimension such as 'unk__0').
    described = {item.name: [dim.dim_value if dim.HasField("dim_value") else dim.dim_param
                             for dim in item.type.tensor_type.shape.dim] for item in model.graph.value_info}
    produced = {name for node in model.graph.node for name in node.output} - {o.name for o in model.graph.output}
    assert produced <= set(described), sorted(produced - set(described))[:5]
    assert [name for name, dims in described.items() if not all(isinstance(d, int) and d > 0 for d in dims)] == []
    # Honest: each resampled input (the Resize before a block's Add) has the side of a level of the 128 px input.
    sides = {-(-128 // 2 ** level) for level in range(1, 8)}
    resized = [described[node.output[0]] for node in model.graph.node if node.op_type == "Resize"]
    assert resized and all(dims[0] == 1 and dims[2] == dims[3] and dims[2] in sides for dims in resized), resized


def _numel(tensor) -> int:
    count = 1
    for dim in tensor.dims:
        count *= dim
    return count


def test_svg_and_png_are_rendered_by_chromium():
    spec = load_builtin("spinenet-49")
    svg = graph_image(spec, 640, "svg", width=900, height=500)
    assert svg.startswith(b"<svg") and svg.count(b'class="point plotly-customdata"') == len(spec.blocks) + 2
    png = graph_image(spec, 640, "png", width=900, height=500)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
