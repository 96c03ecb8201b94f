"""spec -> networkx graph: the one function that turns an architecture into nodes and connections."""
from __future__ import annotations

import networkx as nx

from spinescope.spinenet.input_size import InputSize, compact
from spinescope.spinenet.layout import Layout, resolve
from spinescope.spinenet.spec import Spec


def to_graph(spec: Spec, input_size: InputSize | None = None, layout: Layout | None = None) -> nx.DiGraph:
    """Returns a DiGraph of the backbone at `input_size` (default: the spec's; a side or (height, width) pixels).

    Node attributes: order, level, block_fn, in_channels, channels (output channels), height and width (pixels),
    feature_size (the side in pixels of a square map, else (height, width)), output_level (min_level..max_level,
    e.g. 2..7 with P2, for an output block, else None), role (stem, block or fpn).
    Edge attributes: kind (parent, merge for the 0-outdegree rule, sequential, lateral, top_down), merge (bool),
    resample ('same', 'up x2', 'down x4', ...), direction (same/up/down), factor (2**|level change|), and the
    sizes and plan of the resampling (stride2_conv, depthwise_convs, pool_kernel, pool_stride, scale, resize);
    sizes, kernels, strides and scales are ints where both axes agree, else (height, width) pairs.
    layout: the spec's layout at that size when the caller already has it.
    """
    layout = layout or resolve(spec, input_size)
    graph = nx.DiGraph(name=spec.name, family=spec.family, input_size=layout.input_size)
    for node in layout.nodes:
        graph.add_node(node.id, order=node.order, level=node.level, block_fn=node.block_fn,
                       in_channels=node.in_channels, channels=node.out_channels,
                       height=node.height, width=node.width, feature_size=compact(node.side),
                       output_level=node.output_level, role=node.role)
    for edge in layout.edges:
        plan = edge.plan
        graph.add_edge(edge.source, edge.target, kind=edge.kind, merge=edge.kind == "merge",
                       resample=edge.resample_label,
                       direction=edge.direction, factor=edge.factor, source_size=compact(plan.source),
                       target_size=compact(plan.target), stride2_conv=plan.stride2_conv,
                       depthwise_convs=plan.depthwise_convs, pool_kernel=compact(plan.pool_kernel),
                       pool_stride=compact(plan.pool_stride), scale=compact(plan.scale), resize=plan.resize)
    return graph
