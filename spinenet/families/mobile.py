"""Mobile SpineNet (Du et al., 2020): MBConv blocks, a 3x3/2 conv stem with stem blocks at levels 1 and 2, and
cross-scale connections of stride-2 3x3 depthwise convs (or nearest upsampling) then a 1x1 to the target width."""
from __future__ import annotations

from spinescope.spinenet.families.scale_permuted import ScalePermuted, describe_upsample_and_project
from spinescope.spinenet.layout import Node, ResamplePlan, Side, mobile_resample_plan
from spinescope.spinenet.registry import register_family
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.structure import Describer, Shape

# Width of a block (C) per feature level, before filter_size_scale; level 0 is the stem conv.
FILTER_SIZE_MAP = {0: 8, 1: 16, 2: 24, 3: 40, 4: 80, 5: 112, 6: 112, 7: 112}


class MobileSpineNet(ScalePermuted):
    """Mobile SpineNet: MBConv stem blocks at levels 1 and 2; blocks take their 3x3 width C as input channels."""

    name = "spinenet_mobile"
    title = "Mobile SpineNet"
    block_fns = ("mbconv",)
    default_input_size = 384
    widths = FILTER_SIZE_MAP
    stem_levels = (1, 2)
    stem_strides = (1, 2)
    stem_block_fn = "mbconv"

    def block_input(self, spec: Spec, block_fn: str, level: int) -> int:
        return self.block_width(spec, level)

    def plan(self, source: Side, target: Side, semantics: str = "reference") -> ResamplePlan:
        # The same under Model Garden semantics (its depthwise convs then pad as TF 'SAME': `Describer.conv`).
        return mobile_resample_plan(source, target)

    def stem_channels(self, spec: Spec) -> int:
        return int(FILTER_SIZE_MAP[0] * spec.scaling.filter_size_scale)

    def describe_stem(self, d: Describer, spec: Spec, x: Shape) -> Shape:
        return d.conv_bn_act("stem_conv", 3, self.stem_channels(spec), 3, x, 2, spec.activation)

    def describe_resample(self, d: Describer, name: str, spec: Spec, parent: Node, target: Node,
                          plan: ResamplePlan, x: Shape) -> None:
        channels = parent.out_channels
        with d.module(name, "mobile_resample"):
            with d.module("downsample", "sequential"):
                for index in range(plan.depthwise_convs):
                    x = d.conv_bn_act(str(index), channels, channels, 3, x, 2, spec.activation, groups=channels)
            describe_upsample_and_project(d, x, plan, target, channels)


register_family(MobileSpineNet())
