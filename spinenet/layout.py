"""What a spec means at a given input size: every node's channels and feature size, every connection's resampling.

A family (`spinenet.families`) resolves its specs into these nodes and edges: the reference semantics that depend on
shapes (the resampling plan and the 0-outdegree rule) live here and there. The graph (`spinenet.graph`) reads the
layout; the layer-by-layer description (`spinenet.describe`) is derived from it, and the module, the counts and
the receptive fields from that, so the picture and the module can never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from spinenet.spec import Spec


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

    @property
    def stems(self) -> list[Node]:
        return [node for node in self.nodes if node.role == "stem"]

    @property
    def output_nodes(self) -> dict[int, Node]:
        """Output level -> the node that feeds it, for every output level."""
        return {node.output_level: node for node in self.nodes if node.output_level is not None}


def resolve(spec: Spec, input_size: int | None = None) -> Layout:
    """Returns the Layout of a valid spec at `input_size` (default: the spec's) pixels, square input."""
    from spinenet.registry import family_of

    input_size = input_size or spec.input_size
    return family_of(spec).resolve(spec, input_size)


def live_nodes(layout: Layout) -> set[str]:
    """Returns the ids of the nodes whose output reaches an output level. The others are dead code: the real
    module runs them, but fvcore's trace drops operators whose results are never used, so they count 0."""
    into: dict[str, list[str]] = {}
    for edge in layout.edges:
        into.setdefault(edge.target, []).append(edge.source)
    for before, after in zip(layout.stems, layout.stems[1:]):
        into.setdefault(after.id, []).append(before.id)  # a stem feeds the next one directly
    live, pending = set(), [node.id for node in layout.nodes if node.output_level is not None]
    while pending:
        node_id = pending.pop()
        if node_id not in live:
            live.add(node_id)
            pending.extend(into.get(node_id, ()))
    return live


def fpn_upsample_plan(width: int, target: int) -> ResamplePlan:
    """Nearest 2x upsampling; a nearest resize instead where 2x does not land on the lateral's size."""
    if 2 * width == target:
        return ResamplePlan(width, target, scale=2)
    return ResamplePlan(width, target, resize=True)

