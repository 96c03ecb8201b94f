"""spec -> networkx graph: the one function that turns an architecture into nodes and connections."""
from __future__ import annotations

import networkx as nx

from spinenet.layout import resolve
from spinenet.spec import Spec


def to_graph(spec: Spec, input_size: int | None = None) -> nx.DiGraph:
    """Returns a DiGraph of the backbone at `input_size` pixels (default: the spec's).

    Node attributes: order, level, block_fn, in_channels, channels (output channels), feature_size (pixels per
    side), output_level (min_level..max_level, e.g. 2..7 with P2, for an output block, else None), role (stem, block or fpn).
    Edge attributes: kind (parent, merge for the 0-outdegree rule, sequential, lateral, top_down), merge (bool),
    resample ('same', 'up x2', 'down x4', ...), direction (same/up/down), factor (2**|level change|), and the
    sizes and plan of the resampling (stride2_conv, depthwise_convs, pool_kernel, pool_stride, scale, resize).
    """
    layout = resolve(spec, input_size)
    graph = nx.DiGraph(name=spec.name, family=spec.family, input_size=layout.input_size)
    for node in layout.nodes:
        graph.add_node(node.id, order=node.order, level=node.level, block_fn=node.block_fn,
                       in_channels=node.in_channels, channels=node.out_channels, feature_size=node.size,
                       output_level=node.output_level, role=node.role)
    for edge in layout.edges:
        plan = edge.plan
        graph.add_edge(edge.source, edge.target, kind=edge.kind, merge=edge.kind == "merge",
                       resample=edge.resample_label,
                       direction="same" if edge.level_delta == 0 else "up" if edge.level_delta < 0 else "down",
                       factor=2 ** abs(edge.level_delta), source_size=plan.width, target_size=plan.target,
                       stride2_conv=plan.stride2_conv, depthwise_convs=plan.depthwise_convs,
                       pool_kernel=plan.pool_kernel, pool_stride=plan.pool_stride, scale=plan.scale,
                       resize=plan.resize)
    return graph
