"""Model Garden's SpineNet and Mobile SpineNet functional models as graphs of Keras layers (`keras_order.ModelGraph`),
built from one of our specs the way tensorflow/models builds them (`official/vision/modeling/backbones/spinenet.py`,
`spinenet_mobile.py`, tf-models-official 2.20), each weighted layer naming the module of ours it becomes.

SpineNet: stem Conv2D, BatchNormalization, relu op, MaxPool2D; each block group a BottleneckBlock / ResidualBlock
layer per repeat then a tf.identity op; a connection Conv2D 1x1, BN, act op, [Conv2D 3x3/2, BN, act op, MaxPool2D
...] or nearest upsampling ops, Conv2D 1x1, BN; a block's parents summed by one add_n op, then the act op; endpoints
Conv2D, BN, act op. Mobile: stem Conv2D, BN, Activation; block groups an InvertedBottleneckBlock then an
Activation('linear'); connections [DepthwiseConv2D, BN, Activation] per halving or upsampling, then Conv2D 1x1,
BN; parents summed by a chain of Add layers.
"""
from __future__ import annotations

from spinescope.analysis.convert.keras_order import KerasLayer, ModelGraph, weighted_order
from spinescope.spinenet.describe import describe
from spinescope.spinenet.layout import Layout
from spinescope.spinenet.registry import family_of
from spinescope.spinenet.spec import Spec

# Model Garden needs sides that are multiples of 128; the graph (how many pools, which upsamplings) is the same at
# every such size, so it is built at this one.
GRAPH_SIZE = 256


def _conv_bn(graph: ModelGraph, x: int, name: str, depthwise: bool = False) -> int:
    x = graph.add("depthwise_conv" if depthwise else "conv", x, target=f"{name}.0")
    return graph.add("batch_norm", x, target=f"{name}.1")


def _group(graph: ModelGraph, x: int, name: str, block_fn: str, repeats: int, mobile: bool) -> int:
    for index in range(repeats):
        x = graph.add(block_fn, x, target=f"{name}.{index}")
    return graph.add("linear" if mobile else "identity", x)


def model_garden_graph(spec: Spec) -> tuple[ModelGraph, list[int]]:
    """Returns Model Garden's functional model of `spec` (SpineNet or Mobile SpineNet) as a graph, and its output
    layers in the order Keras flattens them (sorted level keys). Our module names are those of
    `spinescope.spinenet.describe` (`backbone.blocks.b3.resample.0.reduce.0`, ...)."""
    mobile = spec.family == "spinenet_mobile"
    structure = describe(spec, GRAPH_SIZE)
    layout: Layout = structure.layout
    graph = ModelGraph()
    x = graph.add("input")
    if mobile:
        x = graph.add("activation", _conv_bn(graph, x, "backbone.stem_conv"))
    else:
        x = graph.add("relu", _conv_bn(graph, x, "backbone.stem_conv.0"))
        x = graph.add("max_pool", x)
    repeats = spec.scaling.block_repeats
    tensors = {}
    for node in layout.stems:
        x = tensors[node.id] = _group(graph, x, f"backbone.blocks.{node.id}", node.block_fn, repeats, mobile)
    nodes = {node.id: node for node in layout.nodes}
    for node in layout.nodes[len(layout.stems):]:
        parents = []
        edges = layout.edges_into(node.id)
        for index, edge in enumerate(e for e in edges if e.kind == "parent"):
            name = f"backbone.blocks.{node.id}.resample.{index}"
            parents.append(_connection(graph, tensors[edge.source], name, edge.plan, nodes[edge.source], mobile))
        parents += [tensors[edge.source] for edge in edges if edge.kind == "merge"]
        if mobile:
            total = parents[0]
            for adder in parents[1:]:
                total = graph.add("add", total, adder)
        else:
            total = graph.add("add_n", *parents)
        total = graph.add("activation", total)
        tensors[node.id] = _group(graph, total, f"backbone.blocks.{node.id}.group", node.block_fn, repeats, mobile)
    outputs = {}
    for level in range(spec.min_level, spec.max_level + 1):
        source = tensors[layout.output_nodes[level].id]
        outputs[str(level)] = graph.add("activation", _conv_bn(graph, source, f"backbone.endpoints.P{level}"))
    family_of(spec)  # a registered family (raises KeyError otherwise)
    return graph, [outputs[key] for key in sorted(outputs)]


def _connection(graph: ModelGraph, x: int, name: str, plan, parent, mobile: bool) -> int:
    if mobile:
        for index in range(plan.depthwise_convs):
            x = graph.add("activation", _conv_bn(graph, x, f"{name}.downsample.{index}", depthwise=True))
    else:
        x = graph.add("activation", _conv_bn(graph, x, f"{name}.reduce"))
        if plan.stride2_conv:
            x = graph.add("activation", _conv_bn(graph, x, f"{name}.downsample"))
            for _ in range(plan.pools):
                x = graph.add("max_pool", x)
    if plan.upsampled:
        x = graph.nearest_upsampling(x)
    return _conv_bn(graph, x, f"{name}.project")


def checkpoint_layers(spec: Spec) -> list[KerasLayer]:
    """Returns Model Garden's weighted layers of `spec` in checkpoint order: element N is the checkpoint's
    `backbone/layer_with_weights-N`, its `kind` and `target` (our module)."""
    return weighted_order(*model_garden_graph(spec))
