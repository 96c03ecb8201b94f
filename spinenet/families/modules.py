"""The families' modules (torch): the backbones and their cross-scale connections, each built from the Layer its
family's `describe` adds, named as it."""
from __future__ import annotations

import torch

from spinescope.spinenet.containers import DescribedModule, child, optional_child
from spinescope.spinenet.families.resnet import OUTPUT_LEVEL
from spinescope.spinenet.families.resnet_fpn import FPN_LEVELS
from spinescope.spinenet.input_size import compact
from spinescope.spinenet.layers import (ceil_div, gather_nearest, max_pool_same, max_pool_same_varying, on,
                                        resize_nearest, shapes_are_dynamic, shared, side, upsample_nearest)
from spinescope.spinenet.layout import model_garden_resample_plan, mobile_resample_plan, reference_resample_plan
from spinescope.spinenet.structure import Layer


class ScalePermutedBackbone(DescribedModule):
    """SpineNet's and Mobile SpineNet's backbone: the stem, the blocks in build order (each resampling its
    parents), then the 1x1 endpoints. Returns {"P3": tensor, ...}."""

    kind = "scale_permuted_backbone"

    def __init__(self, layer: Layer):
        super().__init__()
        self.stem_conv = child(layer, "stem_conv")
        self.blocks = child(layer, "blocks")
        self.endpoints = child(layer, "endpoints")
        self.stem_ids = layer.attrs["stem_ids"]
        self.inputs = layer.attrs["inputs"]  # block id -> (level, parent ids, 0-outdegree merge ids)
        self.output_ids = layer.attrs["output_ids"]
        self.levels = layer.attrs["levels"]

    def forward(self, images):
        # Ints, or under layers.dynamic_shapes() 0-dim tensors: a trace then records the sizes' arithmetic, once per
        # level; each block's connections also get their parents' sizes, the same objects for maps of the same level.
        height, width = side(images, -2), side(images, -1)
        dynamic = shapes_are_dynamic()
        x = self.stem_conv(images)
        features, sizes, level_sizes = {}, {}, {}
        for stem_id in self.stem_ids:
            x = self.blocks[stem_id](x)
            features[stem_id] = x
            if dynamic:
                sizes[stem_id] = side(x, -2), side(x, -1)
        for block_id, (level, parents, merged) in self.inputs.items():
            if level not in level_sizes:
                level_sizes[level] = ceil_div(height, 2 ** level), ceil_div(width, 2 ** level)  # input_size.feature_hw
            size = sizes[block_id] = level_sizes[level]
            arguments = [features[p] for p in parents], [features[m] for m in merged], size
            if dynamic:  # and the parents' sizes (eager calls keep their three arguments)
                arguments += ([sizes[p] for p in parents],)
            features[block_id] = self.blocks[block_id](*arguments)
        return {f"P{level}": self.endpoints[f"P{level}"](features[self.output_ids[level]]) for level in self.levels}


class PermutedBlock(DescribedModule):
    """One block of a scale-permuted backbone: its parents resampled to its size and added (with any 0-outdegree
    merges), the activation, then its block group."""

    kind = "permuted_block"

    def __init__(self, layer: Layer):
        super().__init__()
        self.resample = child(layer, "resample")
        self.act = child(layer, "act")
        self.group = child(layer, "group")

    def forward(self, parents, merged, size, sources=None):
        """The sum is made in place in the first resampling's output: its projection BN's output, which nothing
        else reads (BN's backward needs its input, not its output). `sources`: the parents' sizes under
        dynamic_shapes()."""
        first, second = [(source,) for source in sources] if sources else ((), ())
        total = self.resample[0](parents[0], size, *first)
        total.add_(self.resample[1](parents[1], size, *second))
        for feature in merged:
            total.add_(feature)
        return self.group(self.act(total))


class ReferenceResample(DescribedModule):
    """SpineNet's connection: 1x1 to alpha x C -> [3x3 stride-2 conv -> one SAME max-pool] or nearest upsampling
    -> nearest resize where the size is still off -> 1x1 projection (`layout.reference_resample_plan`)."""

    kind = "reference_resample"

    def __init__(self, layer: Layer):
        super().__init__()
        self.reduce = child(layer, "reduce")
        self.downsample = optional_child(layer, "downsample")  # built for a connection that goes down
        self.project = child(layer, "project")

    def forward(self, x, size, source=None):
        if shapes_are_dynamic():
            return self.project(self.resample_as_data(x, size, source))
        plan = reference_resample_plan((int(x.shape[-2]), int(x.shape[-1])), tuple(size))
        x = self.reduce(x)
        if self.downsample is not None and plan.stride2_conv:
            x = self.downsample(x)
            if plan.pooled:
                x = max_pool_same(x, compact(plan.pool_kernel), compact(plan.pool_stride))
        elif plan.upsampled:
            x = upsample_nearest(x, plan.scale)
        return self.project(resize_nearest(x, size))

    def resample_as_data(self, x, size, source=None):
        """`forward` up to the projection under `layers.dynamic_shapes()`, where the sizes (`size`, and x's `source`
        where the caller has them) are 0-dim tensors: every choice of `layout.reference_resample_plan` that depends
        on them is computed as data, so that one traced graph follows the plan at every input size. Going down: the
        stride-2 conv, then per axis the pool of `layout._reference_axis` (none while source // target <= 2; stride
        2 if the target does not divide the source, else source // target // 2; kernel 3 up to a ratio of 4, else
        5), then the nearest resize to the target; no conv where source and target are the same (1-pixel maps).
        Going up, an integer upsampling then a resize is one nearest resize to the target (the same indices). The
        same numbers as the eager branch."""
        x = self.reduce(x)
        if self.downsample is None:
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
    pooled = (source // target > 2).to(torch.int64)
    divides = (source % target == 0).to(torch.int64)
    stride = 2 + divides * (source // target // 2 - 2)  # 2 unless the target divides the source
    kernel = 3 + 2 * (source > 4 * target).to(torch.int64)  # 3 up to a ratio of 4, else 5
    kernel, stride, convolved = 1 + pooled * (kernel - 1), 1 + pooled * (stride - 1), ceil_div(source, 2)
    return kernel, stride, convolved, ceil_div(convolved, stride)


class ModelGardenResample(DescribedModule):
    """SpineNet's connection under Model Garden semantics: 1x1 to alpha x C -> [3x3 stride-2 conv (TF 'SAME'
    padding) -> 3x3/2 SAME max-pools while above the target] or nearest upsampling -> nearest resize where the size
    is still off -> 1x1 projection (`layout.model_garden_resample_plan`). Under `dynamic_shapes()` it takes the
    pools it was built with (sizes from inputs that are multiples of 2**max_level, as Model Garden requires, give
    the same plan at every such size)."""

    kind = "model_garden_resample"

    def __init__(self, layer: Layer):
        super().__init__()
        self.reduce = child(layer, "reduce")
        self.downsample = optional_child(layer, "downsample")
        self.project = child(layer, "project")
        self.pools = layer.attrs["pools"]

    def forward(self, x, size, source=None):
        x = self.reduce(x)
        if shapes_are_dynamic():
            if self.downsample is not None:
                x = self.downsample(x)
                for _ in range(self.pools):
                    x = max_pool_same(x, 3, 2)
            return self.project(gather_nearest(x, size))
        plan = model_garden_resample_plan((int(x.shape[-2]), int(x.shape[-1])), tuple(size))
        if self.downsample is not None and plan.stride2_conv:
            x = self.downsample(x)
            for _ in range(plan.pools):
                x = max_pool_same(x, 3, 2)
        elif plan.upsampled:
            x = upsample_nearest(x, plan.scale)
        return self.project(resize_nearest(x, size))


class MobileResample(DescribedModule):
    """Mobile SpineNet's connection: stride-2 3x3 depthwise convs or nearest upsampling, a nearest resize where the
    size is still off, then a 1x1 projection (`layout.mobile_resample_plan`)."""

    kind = "mobile_resample"

    def __init__(self, layer: Layer):
        super().__init__()
        self.downsample = child(layer, "downsample")
        self.project = child(layer, "project")

    def forward(self, x, size, source=None):
        if len(self.downsample):  # every depthwise conv the module was built with
            x, source = self.downsample(x), None
        elif not shapes_are_dynamic():  # under dynamic_shapes() the resize below alone: the same indices
            plan = mobile_resample_plan((int(x.shape[-2]), int(x.shape[-1])), tuple(size))
            if plan.upsampled:
                x = upsample_nearest(x, plan.scale)
        return self.project(resize_nearest(x, size, source))


class ResnetFpn(DescribedModule):
    """ResNet's stem and stages, then the FPN: lateral 1x1s, nearest top-down path, 3x3 output convs on P3-P5,
    P6 from P5, P7 from ReLU(P6), a BN on each level. Returns {"P3": tensor, ..., "P7": tensor}."""

    kind = "resnet_fpn"

    def __init__(self, layer: Layer):
        super().__init__()
        self.blocks = child(layer, "blocks")
        self.stage_ids = layer.attrs["stage_ids"]  # level -> the ids of its bottlenecks in order

    def forward(self, images):
        x = self.blocks["stem"](images)
        stage_outputs = {}
        for level, ids in self.stage_ids.items():
            for block_id in ids:
                x = self.blocks[block_id](x)
            stage_outputs[level] = x
        merged = {5: self.blocks["P5"].lateral(stage_outputs[5])}
        for level in (4, 3):
            lateral = self.blocks[f"P{level}"].lateral(stage_outputs[level])
            # Nearest 2x upsampling, written as a resize to the lateral's size so that odd sizes work too; added in
            # place into the lateral conv's output (a conv's backward needs its input, not its output).
            merged[level] = lateral.add_(resize_nearest(merged[level + 1], lateral.shape[-2:]))
        pre_bn = {level: self.blocks[f"P{level}"].conv(merged[level]) for level in (3, 4, 5)}
        pre_bn[6] = self.blocks["P6"].conv(pre_bn[5])
        pre_bn[7] = self.blocks["P7"].conv(pre_bn[6].relu())
        return {f"P{level}": self.blocks[f"P{level}"].bn(pre_bn[level]) for level in FPN_LEVELS}


class Resnet(DescribedModule):
    """ResNet's stem and stages without FPN. Returns {"P5": C5}."""

    kind = "resnet"

    def __init__(self, layer: Layer):
        super().__init__()
        self.blocks = child(layer, "blocks")
        self.endpoints = child(layer, "endpoints")
        self.stage_ids = layer.attrs["stage_ids"]  # level -> the ids of its bottlenecks in order

    def forward(self, images):
        x = self.blocks["stem"](images)
        for ids in self.stage_ids.values():
            for block_id in ids:
                x = self.blocks[block_id](x)
        return {f"P{OUTPUT_LEVEL}": self.endpoints[f"P{OUTPUT_LEVEL}"](x)}
