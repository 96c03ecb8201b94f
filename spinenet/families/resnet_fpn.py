"""ResNet-50/101/152 (v1, stride on the 3x3) with the authors' FPN: lateral 1x1s, nearest top-down path, 3x3 output
convs on P3-P5, P6 from P5, P7 from ReLU(P6), then a separate BN (no activation) on each of P3-P7."""
from __future__ import annotations

from spinescope.spinenet.blocks import BLOCK_TYPES
from spinescope.spinenet.layout import Edge, Layout, Node, ResamplePlan, fpn_upsample_plan, reference_resample_plan
from spinescope.spinenet.registry import Family, register_family
from spinescope.spinenet.input_size import InputSize, feature_hw, hw
from spinescope.spinenet.spec import Scaling, Spec
from spinescope.spinenet.structure import Describer, Shape
from spinescope.spinenet.validate import LIMITS, check_int, describe_value

STAGE_WIDTHS = (64, 128, 256, 512)  # the 3x3 width of each stage's bottlenecks (C2..C5)
STEM_CHANNELS = 64
FPN_LEVELS = (3, 4, 5, 6, 7)


def block_width(spec: Spec, level: int) -> int:
    """Returns the 3x3 width of a bottleneck in the stage at `level` (2..5), channels."""
    return STAGE_WIDTHS[level - 2]


def check_stages(problems: list, stages) -> None:
    """Four stage block counts within the limits (shared with the `resnet` family)."""
    if not isinstance(stages, list) or len(stages) != 4:
        problems.append(f"stages: must be a list of 4 block counts (e.g. [3, 4, 6, 3]), got {describe_value(stages)}")
    else:
        for index, count in enumerate(stages):
            check_int(problems, f"stages[{index}]", count, 1, LIMITS["max_stage_blocks"])


def describe_trunk(d: Describer, spec: Spec, input_size: InputSize, stage_ids: dict) -> dict[int, Shape]:
    """Adds blocks[stem] and blocks[c<level>_<i>] (bottlenecks; the first of stages 3-5 has stride 2) for
    `input_size` (a side or (height, width), pixels) to the open "blocks" container, fills `stage_ids` (level ->
    block ids); returns level -> the stage's output shape."""
    act, bottleneck = spec.activation, BLOCK_TYPES["bottleneck"]
    x = (3, *hw(input_size))
    with d.module("stem", "sequential"):
        x = d.conv_bn_act("0", 3, STEM_CHANNELS, 7, x, 2, act)
        x = d.call(d.add("1", "max_pool_same", kernel=3, stride=2), x)
    stage_outputs = {}
    for stage, count in enumerate(spec.stages):
        level = stage + 2
        stage_ids[level] = [f"c{level}_{index}" for index in range(count)]
        for index, block_id in enumerate(stage_ids[level]):
            stride = 2 if index == 0 and level > 2 else 1
            x = bottleneck.describe(d, block_id, x[0], block_width(spec, level), stride, act, x)
        stage_outputs[level] = x
    return stage_outputs


class ResnetFpn(Family):
    """ResNet-FPN: four stages of bottlenecks (`stages`: their block counts), then the FPN's P3-P7."""

    name = "resnet_fpn"
    title = "ResNet-FPN"
    stem_ids = ("stem",)
    fields = frozenset({"stages", "fpn_num_filters"})

    def block_width(self, spec: Spec, level: int) -> int:
        return block_width(spec, level)

    def to_dict(self, spec: Spec) -> dict:
        return {"stages": list(spec.stages), "fpn_num_filters": spec.scaling.endpoints_num_filters}

    def from_dict(self, data: dict, common: dict) -> Spec:
        return Spec(**common, stages=tuple(data["stages"]),
                    scaling=Scaling(endpoints_num_filters=data.get("fpn_num_filters", 256)))

    def check(self, problems: list[str], data: dict, min_level, max_level, levels_ok: bool) -> int | None:
        """ResNet-FPN's own fields: four stage block counts, the FPN width, and P3-P7 as its only output levels."""
        if levels_ok and (min_level, max_level) != (3, 7):
            problems.append(f"min_level/max_level: resnet_fpn produces P3-P7 only (min_level 3, max_level 7), got "
                            f"{min_level} and {max_level} (an FPN P2 from C2, as detectron2 builds it, is not built "
                            "here)")
        check_stages(problems, data.get("stages"))
        endpoints = data.get("fpn_num_filters", 256)
        check_int(problems, "fpn_num_filters", endpoints, 1, LIMITS["max_endpoints_num_filters"])
        return endpoints

    def resolve(self, spec: Spec, input_size: InputSize) -> Layout:
        """Returns the stem, the stages' blocks (c<level>_<index>) and the FPN levels P3-P7 as graph nodes."""
        layout = Layout(spec, input_size)
        layout.nodes.append(Node("stem", 0, 2, "conv", 3, STEM_CHANNELS, *feature_hw(input_size, 2), role="stem"))
        previous, channels = layout.nodes[0], STEM_CHANNELS
        last_of_level = {}
        for stage, count in enumerate(spec.stages):
            level = stage + 2
            out_channels = BLOCK_TYPES["bottleneck"].out_channels(block_width(spec, level))
            for index in range(count):
                node = Node(f"c{level}_{index}", len(layout.nodes), level, "bottleneck", channels, out_channels,
                            *feature_hw(input_size, level))
                layout.edges.append(Edge(previous.id, node.id, "sequential",
                                         reference_resample_plan(previous.side, node.side), level - previous.level))
                layout.nodes.append(node)
                previous, channels = node, out_channels
            last_of_level[level] = previous
        fpn_width = spec.scaling.endpoints_num_filters
        # Top-down P5 -> P3, then P6 from P5 and P7 from P6: the order in which the FPN computes them.
        for level in (5, 4, 3, 6, 7):
            node = Node(f"P{level}", len(layout.nodes), level, "fpn",
                        last_of_level[level].out_channels if level <= 5 else fpn_width, fpn_width,
                        *feature_hw(input_size, level), output_level=level, role="fpn")
            if level <= 5:
                source = last_of_level[level]
                layout.edges.append(Edge(source.id, node.id, "lateral", ResamplePlan(source.side, node.side), 0))
                if level < 5:
                    coarser = layout.node(f"P{level + 1}")
                    layout.edges.append(Edge(coarser.id, node.id, "top_down",
                                             fpn_upsample_plan(coarser.side, node.side), -1))
            else:
                finer = layout.node(f"P{level - 1}")
                layout.edges.append(Edge(finer.id, node.id, "sequential",
                                         ResamplePlan(finer.side, node.side, stride2_conv=True), 1))
            layout.nodes.append(node)
        return layout

    def describe(self, d: Describer, layout: Layout) -> dict[str, Shape]:
        """Adds "backbone": blocks[stem], blocks[c<level>_<i>] (bottlenecks; the first of stages 3-5 has stride 2) and
        blocks[P<level>] (lateral, conv, bn); returns {"P3": shape, ...}."""
        spec = layout.spec
        width = spec.scaling.endpoints_num_filters
        stage_ids = {}
        with d.module("backbone", "resnet_fpn", stage_ids=stage_ids):
            fpn = {}
            with d.module("blocks", "dict"):
                stage_outputs = describe_trunk(d, spec, layout.input_size, stage_ids)
                for level in (5, 4, 3, 6, 7):
                    with d.module(f"P{level}", "dict") as layer:
                        if level <= 5:
                            d.add("lateral", "conv", in_channels=stage_outputs[level][0], out_channels=width, kernel=1,
                                  stride=1, padding=0, groups=1, bias=True)
                        d.add("conv", "conv", in_channels=width, out_channels=width, kernel=3,
                              stride=1 if level <= 5 else 2, padding=1, groups=1, bias=True)
                        d.add("bn", "batch_norm", channels=width)
                        fpn[level] = layer
            merged = {5: d.call(fpn[5].child("lateral"), stage_outputs[5])}
            for level in (4, 3):
                lateral = d.call(fpn[level].child("lateral"), stage_outputs[level])
                upsampled = d.resize(merged[level + 1], lateral[1], lateral[2])
                merged[level] = d.op("add_", (lateral, upsampled), lateral)  # in place into the lateral conv's output
            pre_bn = {level: d.call(fpn[level].child("conv"), merged[level]) for level in (3, 4, 5)}
            pre_bn[6] = d.call(fpn[6].child("conv"), pre_bn[5])
            pre_bn[7] = d.call(fpn[7].child("conv"), d.op("relu", (pre_bn[6],), pre_bn[6]))
            return {f"P{level}": d.call(fpn[level].child("bn"), pre_bn[level]) for level in FPN_LEVELS}


register_family(ResnetFpn())
