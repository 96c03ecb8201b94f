"""What a spec means at a given input size: every node's channels and feature size, every connection's resampling.

This is the single place that applies the reference semantics that depend on shapes (the resampling plan and the
0-outdegree rule). The graph (`spinenet.graph`) and the PyTorch builders (`spinenet.models`) both read it, so the
picture and the module can never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from spinenet.spec import (RESNET_STAGE_WIDTHS, STEM_IDS, STEM_LEVELS, Spec, block_out_channels, block_width,
                           feature_size)


@dataclass(frozen=True)
class ResamplePlan:
    """How a parent feature map of side `width` is brought to side `target`.

    Reference SpineNet: one 3x3 stride-2 conv when downsampling, then at most one SAME max-pool, then a nearest
    resize if the size is still off. Mobile SpineNet: `depthwise_convs` 3x3 stride-2 depthwise convs.
    Upsampling: nearest by an integer `scale`, or a nearest resize when the ratio is not an integer.
    """

    width: int
    target: int
    stride2_conv: bool = False
    depthwise_convs: int = 0
    pool_kernel: int = 0
    pool_stride: int = 0
    scale: int = 1
    resize: bool = False

    @property
    def direction(self) -> str:
        return "down" if self.width > self.target else "up" if self.width < self.target else "same"


def reference_resample_plan(width: int, target: int) -> ResamplePlan:
    """Returns the reference (tensorflow/tpu) plan to take a feature map of side `width` to side `target`."""
    if width > target:
        pool_kernel = pool_stride = 0
        after = -(-width // 2)
        if width // target > 2:
            pool_stride = 2 if width % target else width // target // 2
            pool_kernel = 3 if width / target <= 4 else 5
            after = -(-after // pool_stride)
        return ResamplePlan(width, target, stride2_conv=True, pool_kernel=pool_kernel, pool_stride=pool_stride,
                            resize=after != target)
    if width < target:
        if target % width:
            return ResamplePlan(width, target, resize=True)
        return ResamplePlan(width, target, scale=target // width)
    return ResamplePlan(width, target)


def mobile_resample_plan(width: int, target: int) -> ResamplePlan:
    """Returns the Mobile SpineNet plan: stride-2 depthwise convs while the (halved, real-valued) width is above
    the target, or nearest upsampling (a resize when the ratio is not an integer)."""
    if width > target:
        convs, current, side = 0, float(width), width
        while current > target:
            convs, current, side = convs + 1, current / 2, -(-side // 2)
        return ResamplePlan(width, target, depthwise_convs=convs, resize=side != target)
    return reference_resample_plan(width, target)


@dataclass(frozen=True)
class Node:
    """One block of the backbone as placed in the graph and built as a module (`blocks[id]`)."""

    id: str
    order: int
    level: int
    block_fn: str
    in_channels: int
    out_channels: int
    size: int
    output_level: int | None = None
    role: str = "block"  # stem | block | fpn


@dataclass(frozen=True)
class Edge:
    """A connection into `target`. `kind` is parent, merge (0-outdegree rule), sequential, lateral or top_down."""

    source: str
    target: str
    kind: str
    plan: ResamplePlan
    level_delta: int  # target level - source level

    @property
    def resample_label(self) -> str:
        if self.level_delta == 0:
            return "same"
        return f"{'up' if self.level_delta < 0 else 'down'} x{2 ** abs(self.level_delta)}"


@dataclass
class Layout:
    """Nodes in build order and the edges into each, at one input size."""

    spec: Spec
    input_size: int
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        return next(node for node in self.nodes if node.id == node_id)

    def edges_into(self, node_id: str) -> list[Edge]:
        return [edge for edge in self.edges if edge.target == node_id]


def resolve(spec: Spec, input_size: int | None = None) -> Layout:
    """Returns the Layout of a valid spec at `input_size` (default: the spec's) pixels, square input."""
    input_size = input_size or spec.input_size
    if spec.family == "resnet_fpn":
        return _resolve_resnet_fpn(spec, input_size)
    return _resolve_spinenet(spec, input_size)


def _resolve_spinenet(spec: Spec, input_size: int) -> Layout:
    layout = Layout(spec, input_size)
    mobile = spec.family == "spinenet_mobile"
    plan_fn = mobile_resample_plan if mobile else reference_resample_plan
    stem_fn = "mbconv" if mobile else "bottleneck"
    for order, (stem_id, level) in enumerate(zip(STEM_IDS, STEM_LEVELS[spec.family])):
        channels = block_out_channels(spec, stem_fn, level)
        layout.nodes.append(Node(stem_id, order, level, stem_fn, channels, channels,
                                 feature_size(input_size, level), role="stem"))
    outgoing = {node.id: 0 for node in layout.nodes}
    by_id = {node.id: node for node in layout.nodes}
    for order, block in enumerate(spec.blocks, start=len(STEM_IDS)):
        size = feature_size(input_size, block.level)
        in_channels = block_width(spec, block.level) if mobile else block_out_channels(
            spec, block.block_fn, block.level)
        for parent_id in block.parents:
            parent = by_id[parent_id]
            layout.edges.append(Edge(parent_id, block.id, "parent", plan_fn(parent.size, size),
                                     block.level - parent.level))
            outgoing[parent_id] += 1
        if block.is_output:
            for other in list(by_id.values()):
                if outgoing[other.id] == 0 and other.size == size and other.out_channels == in_channels:
                    layout.edges.append(Edge(other.id, block.id, "merge", ResamplePlan(size, size),
                                             block.level - other.level))
                    outgoing[other.id] += 1
        node = Node(block.id, order, block.level, block.block_fn, in_channels,
                    block_out_channels(spec, block.block_fn, block.level), size,
                    block.level if block.is_output else None)
        layout.nodes.append(node)
        by_id[block.id] = node
        outgoing[block.id] = 0
    return layout


def _resolve_resnet_fpn(spec: Spec, input_size: int) -> Layout:
    layout = Layout(spec, input_size)
    layout.nodes.append(Node("stem", 0, 2, "conv", 3, 64, feature_size(input_size, 2), role="stem"))
    previous, channels = layout.nodes[0], 64
    last_of_level = {}
    for stage, (count, width) in enumerate(zip(spec.stages, RESNET_STAGE_WIDTHS)):
        level = stage + 2
        for index in range(count):
            node = Node(f"c{level}_{index}", len(layout.nodes), level, "bottleneck", channels, 4 * width,
                        feature_size(input_size, level))
            layout.edges.append(Edge(previous.id, node.id, "sequential",
                                     reference_resample_plan(previous.size, node.size), level - previous.level))
            layout.nodes.append(node)
            previous, channels = node, 4 * width
        last_of_level[level] = previous
    fpn_width = spec.scaling.endpoints_num_filters
    # Top-down P5 -> P3, then P6 from P5 and P7 from P6: the order in which the FPN computes them.
    for level in (5, 4, 3, 6, 7):
        node = Node(f"P{level}", len(layout.nodes), level, "fpn",
                    last_of_level[level].out_channels if level <= 5 else fpn_width, fpn_width,
                    feature_size(input_size, level), output_level=level, role="fpn")
        if level <= 5:
            source = last_of_level[level]
            layout.edges.append(Edge(source.id, node.id, "lateral", ResamplePlan(source.size, node.size), 0))
            if level < 5:
                coarser = layout.node(f"P{level + 1}")
                layout.edges.append(Edge(coarser.id, node.id, "top_down",
                                         _fpn_upsample_plan(coarser.size, node.size), -1))
        else:
            finer = layout.node(f"P{level - 1}")
            layout.edges.append(Edge(finer.id, node.id, "sequential",
                                     ResamplePlan(finer.size, node.size, stride2_conv=True), 1))
        layout.nodes.append(node)
    return layout


def _fpn_upsample_plan(width: int, target: int) -> ResamplePlan:
    """Nearest 2x upsampling; a nearest resize instead where 2x does not land on the lateral's size."""
    if 2 * width == target:
        return ResamplePlan(width, target, scale=2)
    return ResamplePlan(width, target, resize=True)

