"""What a spec means at a given input size: every node's channels and feature size, every connection's resampling.

A family (`spinenet.families`) resolves its specs into these nodes and edges: the reference semantics that depend on
shapes (the resampling plan and the 0-outdegree rule) live here and there. The graph (`spinenet.graph`) reads the
layout; the layer-by-layer description (`spinenet.describe`) is derived from it, and the module, the counts and
the receptive fields from that, so the picture and the module can never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from spinescope.spinenet.cache import LruCache
from spinescope.spinenet.input_size import InputSize, normalize
from spinescope.spinenet.registry import family_of
from spinescope.spinenet.spec import Spec


Side = tuple[int, int]  # (height, width) in pixels


@dataclass(frozen=True)
class ResamplePlan:
    """How a parent feature map of (height, width) `source` is brought to `target`, decided per axis.

    Reference SpineNet: one 3x3 stride-2 conv when downsampling, then at most one SAME max-pool (its kernel and
    stride per axis; 1 on an axis that needs none), then a nearest resize if the size is still off. Mobile
    SpineNet: `depthwise_convs` 3x3 stride-2 depthwise convs. Model Garden semantics: the stride-2 conv, then
    `pools` 3x3/2 SAME max-pools (the same on both axes). Upsampling: nearest by an integer `scale` per axis, or a
    nearest resize when a ratio is not an integer. For a square input both axes get the same plan.
    """

    source: Side
    target: Side
    stride2_conv: bool = False
    depthwise_convs: int = 0
    pool_kernel: Side = (0, 0)
    pool_stride: Side = (0, 0)
    scale: Side = (1, 1)
    resize: bool = False
    pools: int = 0

    @property
    def pooled(self) -> bool:
        """Whether the plan has a max-pool after its stride-2 conv."""
        return self.pool_stride != (0, 0)

    @property
    def upsampled(self) -> bool:
        """Whether the plan upsamples by an integer scale (on at least one axis)."""
        return self.scale != (1, 1)


def _reference_axis(side: int, target: int) -> tuple[int, int, int]:
    """One axis of the reference plan going down: (pool kernel, pool stride, side after them); 0s for no pool."""
    after = -(-side // 2)
    if side // target <= 2:
        return 0, 0, after
    stride = 2 if side % target else side // target // 2
    return (3 if side / target <= 4 else 5), stride, -(-after // stride)


def _pool(axes: list[tuple[int, int, int]]) -> tuple[Side, Side]:
    """Per-axis pool kernels and strides; an axis without a pool gets 1 x 1 when the other axis pools."""
    if not any(stride for _, stride, _ in axes):
        return (0, 0), (0, 0)
    return (tuple(kernel or 1 for kernel, _, _ in axes), tuple(stride or 1 for _, stride, _ in axes))


def _upsample(source: Side, target: Side) -> ResamplePlan:
    """Nearest upsampling by integer per-axis factors, or a resize where a ratio is not an integer."""
    if any(t % s for s, t in zip(source, target)):
        return ResamplePlan(source, target, resize=True)
    return ResamplePlan(source, target, scale=(target[0] // source[0], target[1] // source[1]))


def _is_down(source: Side, target: Side) -> bool:
    # Level-derived sides shrink together on both axes (an axis can only stay put at side 1).
    return source != target and source[0] >= target[0] and source[1] >= target[1]


def reference_resample_plan(source: Side, target: Side) -> ResamplePlan:
    """Returns the reference (tensorflow/tpu) plan to take a (height, width) map to `target`, per axis."""
    if _is_down(source, target):
        axes = [_reference_axis(s, t) for s, t in zip(source, target)]
        kernel, stride = _pool(axes)
        return ResamplePlan(source, target, stride2_conv=True, pool_kernel=kernel, pool_stride=stride,
                            resize=tuple(after for _, _, after in axes) != tuple(target))
    if source != target:
        return _upsample(source, target)
    return ResamplePlan(source, target)


def _halvings(source: Side, target: Side) -> tuple[int, tuple[int, int]]:
    """Model Garden's downsampling loop: how many times the (real-valued) side of either axis is halved until
    it is no longer above its target, and the integer sides after as many SAME stride-2 steps."""
    halvings, current, sides = 0, [float(s) for s in source], list(source)
    while any(c > t for c, t in zip(current, target)):
        halvings += 1
        current = [c / 2 for c in current]
        sides = [-(-s // 2) for s in sides]
    return halvings, (sides[0], sides[1])


def model_garden_resample_plan(source: Side, target: Side) -> ResamplePlan:
    """Returns Model Garden's plan (tensorflow/models `_resample_with_alpha`): going down, one 3x3 stride-2 conv,
    then a 3x3/2 SAME max-pool while the side is above the target (down by 8: two pools, where the reference has
    one 5x5/4 pool), a nearest resize where the size is still off; going up, as the reference."""
    if _is_down(source, target):
        halvings, sides = _halvings(source, target)
        return ResamplePlan(source, target, stride2_conv=halvings > 0, pools=max(halvings - 1, 0),
                            resize=sides != tuple(target))
    return reference_resample_plan(source, target)


def mobile_resample_plan(source: Side, target: Side) -> ResamplePlan:
    """Returns the Mobile SpineNet plan: stride-2 depthwise convs while the (halved, real-valued) side of either
    axis is above its target, or nearest upsampling (a resize when a ratio is not an integer)."""
    if _is_down(source, target):
        convs, sides = _halvings(source, target)
        return ResamplePlan(source, target, depthwise_convs=convs, resize=sides != tuple(target))
    return reference_resample_plan(source, target)


@dataclass(frozen=True)
class Node:
    """One block of the backbone as placed in the graph and built as a module (`blocks[id]`)."""

    id: str
    order: int
    level: int
    block_fn: str
    in_channels: int
    out_channels: int
    height: int
    width: int
    output_level: int | None = None
    role: str = "block"  # stem | block | fpn

    @property
    def side(self) -> Side:
        """(height, width) of the node's feature map in pixels."""
        return self.height, self.width


@dataclass(frozen=True)
class Edge:
    """A connection into `target`. `kind` is parent, merge (0-outdegree rule), sequential, lateral or top_down."""

    source: str
    target: str
    kind: str
    plan: ResamplePlan
    level_delta: int  # target level - source level

    @property
    def direction(self) -> str:
        """Returns "same", "up" (to a finer level) or "down" (to a coarser one), by the levels it connects."""
        return "same" if self.level_delta == 0 else "up" if self.level_delta < 0 else "down"

    @property
    def factor(self) -> int:
        """Returns the resampling factor between the two levels, 2**|level change| (1 for the same level)."""
        return 2 ** abs(self.level_delta)

    @property
    def resample_label(self) -> str:
        """Returns "same", or the direction and factor: "up x2", "down x4", ..."""
        return "same" if self.direction == "same" else f"{self.direction} x{self.factor}"


@dataclass
class Layout:
    """Nodes in build order and the edges into each, at one input size."""

    spec: Spec
    input_size: InputSize
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # Model Garden semantics: dead block id -> why, not built

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


LAYOUTS: LruCache[Layout] = LruCache(256)  # the app resolves from several sessions' threads at once


def resolve(spec: Spec, input_size: InputSize | None = None) -> Layout:
    """Returns the Layout of a valid spec at `input_size` (default: the spec's; a side or (height, width)). Under
    Model Garden semantics its dead blocks are left out (`Layout.dropped` says which and why): Model Garden's
    functional model keeps only the layers that reach an output. They still count for the 0-outdegree rule, which
    is applied while the blocks are built, before anything is dropped. Cached by (spec, size): the description,
    the graph and the app's panels of one edit share one layout, which every caller treats as read-only."""
    return LAYOUTS.get((spec, normalize(input_size or spec.input_size)), lambda: _resolve(spec, input_size))


def _resolve(spec: Spec, input_size: InputSize | None) -> Layout:
    layout = family_of(spec).resolve(spec, normalize(input_size or spec.input_size))
    return drop_dead_blocks(layout) if spec.semantics == "model_garden" else layout


def dead_blocks(layout: Layout) -> dict[str, str]:
    """Returns {block id: why it is dead} for every block of `layout` whose output reaches no output level, in build
    order, e.g. {'b17': 'b17 feeds no block and is not an output'} (plain text), plus those the layout already
    dropped (Model Garden semantics). Under the reference semantics a dead block is built and run and its params
    count, but nothing uses its result (fvcore's trace drops it: 0 MACs); Model Garden does not build it."""
    live = live_nodes(layout)
    reasons = {}
    for node in layout.nodes:
        if node.id in live:
            continue
        targets = list(dict.fromkeys(edge.target for edge in layout.edges if edge.source == node.id))
        if not targets:
            reasons[node.id] = f"{node.id} feeds no block and is not an output"
        else:
            reasons[node.id] = (f"{node.id} feeds only {', '.join(targets)}, which "
                                f"{'reaches' if len(targets) == 1 else 'reach'} no output")
    return {**layout.dropped, **reasons}


def drop_dead_blocks(layout: Layout) -> Layout:
    """Returns `layout` without its dead blocks (stems are kept) and the edges that touch them, `dropped` naming
    them with the reason (`dead_blocks`)."""
    reasons = {node_id: why for node_id, why in dead_blocks(layout).items() if layout.node(node_id).role == "block"}
    if not reasons:
        return layout
    return Layout(layout.spec, layout.input_size, [node for node in layout.nodes if node.id not in reasons],
                  [edge for edge in layout.edges if edge.source not in reasons and edge.target not in reasons],
                  {**layout.dropped, **reasons})


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


def fpn_upsample_plan(source: Side, target: Side) -> ResamplePlan:
    """Nearest 2x upsampling; a nearest resize instead where 2x does not land on the lateral's size."""
    if (2 * source[0], 2 * source[1]) == tuple(target):
        return ResamplePlan(source, target, scale=(2, 2))
    return ResamplePlan(source, target, resize=True)

