"""SpineNet (Du et al., CVPR 2020) with the authors' reference semantics (tensorflow/tpu `spinenet.py`): a 7x7/2
conv and a 3x3/2 SAME max-pool stem, two bottleneck stem blocks at level 2, and cross-scale connections that
reduce the parent to alpha x C with a 1x1, downsample with one 3x3/2 conv and at most one SAME max-pool, or upsample
by nearest neighbour, and project with a 1x1 (BN, no activation) to the target block's input channels."""
from __future__ import annotations

from spinescope.spinenet.blocks import BLOCK_TYPES
from spinescope.spinenet.families.scale_permuted import ScalePermuted, describe_upsample_and_project
from spinescope.spinenet.layout import Node, ResamplePlan, Side, model_garden_resample_plan, reference_resample_plan
from spinescope.spinenet.registry import register_family
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.geometry import same_output_side
from spinescope.spinenet.input_size import compact
from spinescope.spinenet.structure import Describer, Shape

# Width of a block's 3x3 conv (C) per feature level, before filter_size_scale.
FILTER_SIZE_MAP = {1: 32, 2: 64, 3: 128, 4: 256, 5: 256, 6: 256, 7: 256}
STEM_CHANNELS = 64


class SpineNet(ScalePermuted):
    """SpineNet: bottleneck stem blocks at level 2; blocks take their group's output channels."""

    name = "spinenet"
    title = "SpineNet"
    block_fns = ("bottleneck", "residual")
    widths = FILTER_SIZE_MAP
    stem_levels = (2, 2)
    stem_strides = (1, 1)
    stem_block_fn = "bottleneck"

    def block_input(self, spec: Spec, block_fn: str, level: int) -> int:
        return self.out_channels(spec, block_fn, level)

    def plan(self, source: Side, target: Side, semantics: str = "reference") -> ResamplePlan:
        if semantics == "model_garden":
            return model_garden_resample_plan(source, target)
        return reference_resample_plan(source, target)

    def stem_channels(self, spec: Spec) -> int:
        return STEM_CHANNELS

    def describe_stem(self, d: Describer, spec: Spec, x: Shape) -> Shape:
        with d.module("stem_conv", "sequential"):
            x = d.conv_bn_act("0", 3, STEM_CHANNELS, 7, x, 2, spec.activation)
            return d.call(d.add("1", "max_pool_same", kernel=3, stride=2), x)

    def describe_resample(self, d: Describer, name: str, spec: Spec, parent: Node, target: Node,
                          plan: ResamplePlan, x: Shape) -> None:
        """1x1 to alpha x C_parent -> [3x3 stride-2 conv -> one SAME max-pool] or nearest upsampling -> nearest
        resize where the size is still off -> 1x1 to the target block's input channels."""
        act = spec.activation
        reduced = int(parent.out_channels / BLOCK_TYPES[parent.block_fn].expansion * spec.scaling.resample_alpha)
        if spec.semantics == "model_garden":
            self._describe_model_garden_resample(d, name, parent, target, plan, x, reduced, act)
            return
        with d.module(name, "reference_resample"):
            x = d.conv_bn_act("reduce", parent.out_channels, reduced, 1, x, activation=act)
            if plan.stride2_conv:
                x = d.conv_bn_act("downsample", reduced, reduced, 3, x, 2, act)
                if plan.pooled:
                    stride_h, stride_w = plan.pool_stride
                    pooled = (x[0], same_output_side(x[1], stride_h), same_output_side(x[2], stride_w))
                    x = d.op("max_pool_same", (x,), pooled, compact(plan.pool_kernel), compact(plan.pool_stride))
            describe_upsample_and_project(d, x, plan, target, reduced)

    @staticmethod
    def _describe_model_garden_resample(d: Describer, name: str, parent: Node, target: Node, plan: ResamplePlan,
                                        x: Shape, reduced: int, act: str) -> None:
        """Model Garden's connection: the same 1x1s, but going down a 3x3 stride-2 conv (TF 'SAME' padding) and
        then `plan.pools` 3x3/2 SAME max-pools."""
        with d.module(name, "model_garden_resample", pools=plan.pools):
            x = d.conv_bn_act("reduce", parent.out_channels, reduced, 1, x, activation=act)
            if plan.stride2_conv:
                x = d.conv_bn_act("downsample", reduced, reduced, 3, x, 2, act)
                for _ in range(plan.pools):
                    x = d.op("max_pool_same", (x,), (x[0], same_output_side(x[1], 2), same_output_side(x[2], 2)), 3, 2)
            describe_upsample_and_project(d, x, plan, target, reduced)


register_family(SpineNet())
