"""What SpineNet and Mobile SpineNet share: a stem, then blocks in any order at any level, each fed by the sum of
its two resampled parents (plus the 0-outdegree merges of an output block), then 1x1 endpoints.

The two families differ in their stem, their block widths, their resampling and the level of their stems: each is
a subclass of `ScalePermuted` that says those. Modules are named after the spec: `blocks[<block id>]` holds a block's
resampling and block group, so counts are attributed back to graph nodes.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from spinescope.spinenet.blocks import BLOCK_TYPES, describe_block_group
from spinescope.spinenet.layout import Edge, Layout, Node, ResamplePlan, Side, live_nodes
from spinescope.spinenet.registry import Family
from spinescope.spinenet.input_size import InputSize, feature_hw, hw
from spinescope.spinenet.spec import STEM_IDS, Block, Scaling, Spec
from spinescope.spinenet.structure import Describer, Shape
from spinescope.spinenet.validate import check_block_list


def describe_upsample_and_project(d: Describer, x: Shape, plan: ResamplePlan, target: Node, channels: int) -> None:
    """The end of every cross-scale connection: nearest upsampling by the plan's integer scale (when it goes up),
    a nearest resize where the size is still off, then the 1x1 projection (BN, no activation) to the target
    block's input channels."""
    if plan.upsampled:
        x = d.op("resize", (x,), (x[0], x[1] * plan.scale[0], x[2] * plan.scale[1]))
    x = d.resize(x, target.height, target.width)
    d.conv_bn_act("project", channels, target.in_channels, 1, x, activation=None)


class ScalePermuted(Family):
    """What a scale-permuted family is made of; SpineNet and Mobile SpineNet are its subclasses.

    widths: level -> the 3x3 width C before filter_size_scale; stem_levels and stem_strides: of stem0 and stem1;
    stem_block_fn: their block type. The subclass says a block's input channels (`block_input`), the resampling
    plan of a connection (`plan`), and describes the stem and one connection (`describe_stem`, `describe_resample`).
    """

    stem_ids = STEM_IDS
    fields = frozenset({"scaling", "blocks"})
    widths: ClassVar[dict[int, int]]
    stem_levels: ClassVar[tuple[int, int]]
    stem_strides: ClassVar[tuple[int, int]]
    stem_block_fn: ClassVar[str]

    @abstractmethod
    def block_input(self, spec: Spec, block_fn: str, level: int) -> int:
        """Returns the input channels of a block group of type `block_fn` at `level`."""

    @abstractmethod
    def plan(self, source: Side, target: Side, semantics: str = "reference") -> ResamplePlan:
        """Returns how a connection brings a (height, width) map `source` to `target` under `semantics`."""

    @abstractmethod
    def stem_channels(self, spec: Spec) -> int:
        """Returns the channels of the stem conv's output, the first stem block's input."""

    @abstractmethod
    def describe_stem(self, d: Describer, spec: Spec, x: Shape) -> Shape:
        """Adds "stem_conv" for the input shape `x`; returns its output shape."""

    @abstractmethod
    def describe_resample(self, d: Describer, name: str, spec: Spec, parent: Node, target: Node, plan: ResamplePlan,
                          x: Shape) -> None:
        """Adds connection `name` from `parent` (output shape `x`) to the input of `target`."""

    def check(self, problems: list[str], data: dict, min_level, max_level, levels_ok: bool) -> int | None:
        return check_block_list(self.name, self.block_fns, problems, data, min_level, max_level, levels_ok)

    def block_width(self, spec: Spec, level: int) -> int:
        """Returns C, the width of a block's inner conv at `level` (channels)."""
        return int(self.widths[level] * spec.scaling.filter_size_scale)

    def out_channels(self, spec: Spec, block_fn: str, level: int) -> int:
        """Returns the output channels of a block group at `level`."""
        return BLOCK_TYPES[block_fn].out_channels(self.block_width(spec, level))

    # -- spec <-> data ----------------------------------------------------------------------------------------
    def to_dict(self, spec: Spec) -> dict:
        return {
            "scaling": {
                "endpoints_num_filters": spec.scaling.endpoints_num_filters,
                "filter_size_scale": spec.scaling.filter_size_scale,
                "resample_alpha": spec.scaling.resample_alpha,
                "block_repeats": spec.scaling.block_repeats,
            },
            "blocks": [{"id": b.id, "level": b.level, "block_fn": b.block_fn, "parents": list(b.parents),
                        "is_output": b.is_output} for b in spec.blocks],
        }

    def from_dict(self, data: dict, common: dict) -> Spec:
        blocks = tuple(Block(id=b["id"], level=b["level"], block_fn=b["block_fn"], parents=tuple(b["parents"]),
                             is_output=b.get("is_output", False)) for b in data["blocks"])
        return Spec(**common, scaling=Scaling(**data["scaling"]), blocks=blocks)

    # -- graph --------------------------------------------------------------------------------------------------
    def resolve(self, spec: Spec, input_size: InputSize) -> Layout:
        """Returns the nodes (stems, then blocks in order) and connections (parents, 0-outdegree merges)."""
        layout = Layout(spec, input_size)
        in_channels = self.stem_channels(spec)  # the stem blocks run in a chain after the stem conv
        for order, (stem_id, level) in enumerate(zip(STEM_IDS, self.stem_levels)):
            channels = self.out_channels(spec, self.stem_block_fn, level)
            layout.nodes.append(Node(stem_id, order, level, self.stem_block_fn, in_channels, channels,
                                     *feature_hw(input_size, level), role="stem"))
            in_channels = channels
        outgoing = {node.id: 0 for node in layout.nodes}
        by_id = {node.id: node for node in layout.nodes}
        for order, block in enumerate(spec.blocks, start=len(STEM_IDS)):
            size = feature_hw(input_size, block.level)
            in_channels = self.block_input(spec, block.block_fn, block.level)
            for parent_id in block.parents:
                parent = by_id[parent_id]
                layout.edges.append(Edge(parent_id, block.id, "parent", self.plan(parent.side, size, spec.semantics),
                                         block.level - parent.level))
                outgoing[parent_id] += 1
            if block.is_output:  # the 0-outdegree rule: unused blocks of the same shape are summed in
                for other in list(by_id.values()):
                    if outgoing[other.id] == 0 and other.side == size and other.out_channels == in_channels:
                        layout.edges.append(Edge(other.id, block.id, "merge", ResamplePlan(size, size),
                                                 block.level - other.level))
                        outgoing[other.id] += 1
            node = Node(block.id, order, block.level, block.block_fn, in_channels,
                        self.out_channels(spec, block.block_fn, block.level), *size,
                        block.level if block.is_output else None)
            layout.nodes.append(node)
            by_id[block.id] = node
            outgoing[block.id] = 0
        return layout

    # -- layers -------------------------------------------------------------------------------------------------
    def describe(self, d: Describer, layout: Layout) -> dict[str, Shape]:
        """Adds "backbone" (stem, blocks, endpoints); returns {"P3": shape, ...}."""
        spec = layout.spec
        act, repeats = spec.activation, spec.scaling.block_repeats
        height, width = hw(layout.input_size)
        stems = layout.stems
        blocks = layout.nodes[len(stems):]
        inputs = {}
        for node in blocks:
            edges = layout.edges_into(node.id)
            inputs[node.id] = (node.level, [e.source for e in edges if e.kind == "parent"],
                               [e.source for e in edges if e.kind == "merge"])
        outputs = {level: node.id for level, node in sorted(layout.output_nodes.items())}
        levels = list(range(spec.min_level, spec.max_level + 1))
        live = live_nodes(layout)
        with d.module("backbone", "scale_permuted_backbone", stem_ids=[node.id for node in stems], inputs=inputs,
                      output_ids=outputs, levels=levels):
            x = self.describe_stem(d, spec, (3, height, width))
            shapes, nodes = {}, {node.id: node for node in layout.nodes}
            with d.module("blocks", "dict"):
                for node, stride in zip(stems, self.stem_strides):
                    d.live = node.id in live
                    x = describe_block_group(d, node.id, node.block_fn, x[0], self.block_width(spec, node.level),
                                             repeats, stride, act, x)
                    shapes[node.id] = x
                for node in blocks:
                    d.live = node.id in live
                    target = (node.in_channels, node.height, node.width)
                    level, parents, merged = inputs[node.id]
                    with d.module(node.id, "permuted_block"):
                        with d.module("resample", "list"):
                            for index, edge in enumerate(e for e in layout.edges_into(node.id) if e.kind == "parent"):
                                self.describe_resample(d, str(index), spec, nodes[edge.source], node, edge.plan,
                                                       shapes[edge.source])
                        # In place into the first resampling's output (its projection BN's, read by nothing else).
                        d.op("add_", [target] * (len(parents) + len(merged)), target)
                        d.activation("act", act, target)
                        shapes[node.id] = describe_block_group(d, "group", node.block_fn, node.in_channels,
                                                               self.block_width(spec, node.level), repeats, 1, act,
                                                               target)
            d.live = True
            features = {}
            with d.module("endpoints", "dict"):
                for level in levels:
                    source = shapes[outputs[level]]
                    features[f"P{level}"] = d.conv_bn_act(f"P{level}", source[0],
                                                          spec.scaling.endpoints_num_filters, 1, source,
                                                          activation=act)
        return features
