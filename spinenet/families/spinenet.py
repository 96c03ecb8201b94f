"""SpineNet (Du et al., CVPR 2020) with the authors' reference semantics (tensorflow/tpu `spinenet.py`): a 7x7/2
conv and a 3x3/2 SAME max-pool stem, two bottleneck stem blocks at level 2, and cross-scale connections that
reduce the parent to alpha x C with a 1x1, downsample with one 3x3/2 conv and at most one SAME max-pool, or upsample
by nearest neighbour, and project with a 1x1 (BN, no activation) to the target block's input channels."""
from __future__ import annotations

from spinescope.spinenet.blocks import BLOCK_TYPES
from functools import partial

from spinescope.spinenet.families.scale_permuted import ScalePermuted, describe_upsample_and_project
from spinescope.spinenet.layout import Node, ResamplePlan, reference_resample_plan
from spinescope.spinenet.registry import Family, register_family
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.validate import check_block_list
from spinescope.spinenet.geometry import same_output_side, square
from spinescope.spinenet.structure import Describer, Shape, forward_for

# Width of a block's 3x3 conv (C) per feature level, before filter_size_scale.
FILTER_SIZE_MAP = {1: 32, 2: 64, 3: 128, 4: 256, 5: 256, 6: 256, 7: 256}
STEM_CHANNELS = 64


def describe_stem(d: Describer, spec: Spec, x: Shape) -> Shape:
    with d.module("stem_conv", "sequential"):
        x = d.conv_bn_act("0", 3, STEM_CHANNELS, 7, x, 2, spec.activation)
        return d.call(d.add("1", "max_pool_same", kernel=3, stride=2), x)


def describe_resample(d: Describer, name: str, spec: Spec, parent: Node, target: Node, plan: ResamplePlan,
                      x: Shape) -> None:
    """1x1 to alpha x C_parent -> [3x3 stride-2 conv -> one SAME max-pool] or nearest upsampling -> nearest resize
    where the size is still off -> 1x1 to the target block's input channels."""
    act = spec.activation
    reduced = int(parent.out_channels / BLOCK_TYPES[parent.block_fn].expansion * spec.scaling.resample_alpha)
    with d.module(name, "reference_resample"):
        x = d.conv_bn_act("reduce", parent.out_channels, reduced, 1, x, activation=act)
        if plan.stride2_conv:
            x = d.conv_bn_act("downsample", reduced, reduced, 3, x, 2, act)
            if plan.pooled:
                stride_h, stride_w = plan.pool_stride
                pooled = (x[0], same_output_side(x[1], stride_h), same_output_side(x[2], stride_w))
                x = d.op("max_pool_same", (x,), pooled, square(plan.pool_kernel), square(plan.pool_stride))
        describe_upsample_and_project(d, x, plan, target, reduced)


@forward_for("reference_resample")
def resample_forward(self, x, size, source=None):
    from spinescope.spinenet.layers import max_pool_same, resize_nearest, shapes_are_dynamic, upsample_nearest

    if shapes_are_dynamic():
        return self.project(resample_as_data(self, x, size, source))
    plan = reference_resample_plan((int(x.shape[-2]), int(x.shape[-1])), tuple(size))
    x = self.reduce(x)
    if hasattr(self, "downsample") and plan.stride2_conv:
        x = self.downsample(x)
        if plan.pooled:
            x = max_pool_same(x, square(plan.pool_kernel), square(plan.pool_stride))
    elif plan.upsampled:
        x = upsample_nearest(x, plan.scale)
    return self.project(resize_nearest(x, size))


def resample_as_data(self, x, size, source=None):
    """`resample_forward` up to the projection under `layers.dynamic_shapes()`, where the sizes (`size`, and x's
    `source` where the caller has them) are 0-dim tensors: every choice of `layout.reference_resample_plan` that
    depends on them is computed as data, so that one traced graph follows the plan at every input size. Going down:
    the stride-2 conv, then per axis the pool of `layout._reference_axis` (none while source // target <= 2; stride
    2 if the target does not divide the source, else source // target // 2; kernel 3 up to a ratio of 4, else 5),
    then the nearest resize to the target; no conv where source and target are the same (1-pixel maps). Going up,
    an integer upsampling then a resize is one nearest resize to the target (the same indices). The same numbers
    as the eager branch."""
    import torch

    from spinescope.spinenet.layers import gather_nearest, max_pool_same_varying, on, shared, side

    x = self.reduce(x)
    if not hasattr(self, "downsample"):  # built for a connection that does not go down
        return gather_nearest(x, size, source)
    sources = source or (side(x, -2), side(x, -1))
    # Per axis: (kernel, stride, the side after the stride-2 conv, after the pool), once per pair of sizes.
    axes = [shared("reference pool", (s, t), lambda s=s, t=t: _pool_axis(s, t)) for s, t in zip(sources, size)]
    kernels, strides, convolved, pooled = zip(*axes)
    down = gather_nearest(max_pool_same_varying(self.downsample(x), kernels, strides, convolved), size, pooled)
    same = (sources[0] == size[0]) & (sources[1] == size[1])  # 1-pixel maps: no conv
    return torch.where(on(same, down), gather_nearest(x, size, sources), down)


def _pool_axis(source, target):
    """`layout._reference_axis` with 0-dim tensors: (pool kernel, pool stride, side after the stride-2 conv, side
    after the pool); a kernel and stride of 1 for no pool on this axis."""
    import torch

    from spinescope.spinenet.layers import ceil_div

    pooled = (source // target > 2).to(torch.int64)
    divides = (source % target == 0).to(torch.int64)
    stride = 2 + divides * (source // target // 2 - 2)  # 2 unless the target divides the source
    kernel = 3 + 2 * (source > 4 * target).to(torch.int64)  # 3 up to a ratio of 4, else 5
    kernel, stride, convolved = 1 + pooled * (kernel - 1), 1 + pooled * (stride - 1), ceil_div(source, 2)
    return kernel, stride, convolved, ceil_div(convolved, stride)


SPINENET = ScalePermuted(
    widths=FILTER_SIZE_MAP, stem_levels=(2, 2), stem_strides=(1, 1), stem_block_fn="bottleneck",
    block_input=lambda parts, spec, block_fn, level: parts.out_channels(spec, block_fn, level),
    plan=reference_resample_plan, describe_stem=describe_stem, describe_resample=describe_resample)

register_family(Family(
    name="spinenet", title="SpineNet", block_fns=("bottleneck", "residual"), stem_ids=("stem0", "stem1"),
    block_width=SPINENET.block_width, resolve=SPINENET.resolve, describe=SPINENET.describe,
    to_dict=SPINENET.to_dict, from_dict=SPINENET.from_dict, fields=frozenset({"scaling", "blocks"}),
    check=partial(check_block_list, "spinenet", ("bottleneck", "residual"))))
