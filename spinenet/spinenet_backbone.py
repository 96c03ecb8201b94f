"""SpineNet and Mobile SpineNet backbones built from any valid spec, with the authors' reference semantics.

Modules are named after the spec: `blocks[<block id>]` holds a block's resampling and block group, so counts can
be attributed back to graph nodes. The structure follows `spinenet.layout.resolve` at the build input size; the
forward pass accepts any input size (a nearest resize fixes sizes that do not divide evenly, as in the reference).
"""
from __future__ import annotations

import torch
from torch import nn

from spinenet.blocks import BlockGroup
from spinenet.layers import ConvBnAct, MaxPoolSame, make_activation, max_pool_same, resize_nearest, upsample_nearest
from spinenet.layout import Layout, Node, mobile_resample_plan, reference_resample_plan
from spinenet.spec import MOBILE_FILTER_SIZE_MAP, Spec, block_width, feature_size


class ReferenceResample(nn.Module):
    """Reference cross-scale connection: 1x1 to alpha x C_parent -> [3x3 stride-2 conv -> one SAME max-pool]
    -> nearest up/resize -> 1x1 to the target block's input channels (BN, no activation)."""

    def __init__(self, parent: Node, target: Node, alpha: float, activation: str, downsample: bool):
        super().__init__()
        parent_width = parent.out_channels / 4 if parent.block_fn == "bottleneck" else parent.out_channels
        reduced = int(parent_width * alpha)
        self.reduce = ConvBnAct(parent.out_channels, reduced, 1, activation=activation)
        self.downsample = ConvBnAct(reduced, reduced, 3, 2, activation=activation) if downsample else None
        self.project = ConvBnAct(reduced, target.in_channels, 1, activation=None)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        plan = reference_resample_plan(int(x.shape[-1]), size[1])
        x = self.reduce(x)
        if self.downsample is not None and plan.stride2_conv:
            x = self.downsample(x)
            if plan.pool_stride:
                x = max_pool_same(x, plan.pool_kernel, plan.pool_stride)
        elif plan.scale > 1:
            x = upsample_nearest(x, plan.scale)
        return self.project(resize_nearest(x, size))


class MobileResample(nn.Module):
    """Mobile SpineNet connection: stride-2 3x3 depthwise convs (BN, activation) or nearest upsampling, then a
    1x1 conv to the target width (BN, no activation)."""

    def __init__(self, parent: Node, target: Node, activation: str, depthwise_convs: int):
        super().__init__()
        channels = parent.out_channels
        self.downsample = nn.Sequential(*[ConvBnAct(channels, channels, 3, 2, activation=activation, groups=channels)
                                          for _ in range(depthwise_convs)])
        self.project = ConvBnAct(channels, target.in_channels, 1, activation=None)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        plan = mobile_resample_plan(int(x.shape[-1]), size[1])
        if len(self.downsample):
            x = self.downsample(x)
        elif plan.scale > 1:
            x = upsample_nearest(x, plan.scale)
        return self.project(resize_nearest(x, size))


class PermutedBlock(nn.Module):
    """One scale-permuted block: resample both parents, add them (and any 0-outdegree merges), activation,
    then the block group."""

    def __init__(self, resamples: list[nn.Module], group: BlockGroup, activation: str):
        super().__init__()
        self.resample = nn.ModuleList(resamples)
        self.act = make_activation(activation)
        self.group = group

    def forward(self, parents: list[torch.Tensor], merged: list[torch.Tensor], size: tuple[int, int]):
        total = self.resample[0](parents[0], size) + self.resample[1](parents[1], size)
        for feature in merged:
            total = total + feature
        return self.group(self.act(total))


class SpineNetBackbone(nn.Module):
    """Stem -> scale-permuted blocks -> 1x1 endpoints; returns {"P3": tensor, ..., "P7": tensor}."""

    def __init__(self, layout: Layout):
        super().__init__()
        spec = layout.spec
        self.mobile = spec.family == "spinenet_mobile"
        act = spec.activation
        self.levels = list(range(spec.min_level, spec.max_level + 1))
        stems = [node for node in layout.nodes if node.role == "stem"]
        if self.mobile:
            stem_channels = int(MOBILE_FILTER_SIZE_MAP[0] * spec.scaling.filter_size_scale)
            self.stem_conv = ConvBnAct(3, stem_channels, 3, 2, activation=act)
            strides = (1, 2)
        else:
            stem_channels = 64
            self.stem_conv = nn.Sequential(ConvBnAct(3, stem_channels, 7, 2, activation=act), MaxPoolSame(3, 2))
            strides = (1, 1)
        self.blocks = nn.ModuleDict()
        in_channels = stem_channels
        for node, stride in zip(stems, strides):
            self.blocks[node.id] = BlockGroup(node.block_fn, in_channels, block_width(spec, node.level),
                                              spec.scaling.block_repeats, stride, act)
            in_channels = node.out_channels
        # block id -> (level, parent ids, ids merged by the 0-outdegree rule), in build order.
        self.inputs: dict[str, tuple[int, list[str], list[str]]] = {}
        for node in layout.nodes[len(stems):]:
            edges = layout.edges_into(node.id)
            parents = [edge for edge in edges if edge.kind == "parent"]
            resamples = [self._resample(layout.node(edge.source), node, edge.plan, spec) for edge in parents]
            group = BlockGroup(node.block_fn, node.in_channels, block_width(spec, node.level),
                               spec.scaling.block_repeats, 1, act)
            self.blocks[node.id] = PermutedBlock(resamples, group, act)
            self.inputs[node.id] = (node.level, [e.source for e in parents], [e.source for e in edges if e.kind == "merge"])
        self.output_ids = {node.output_level: node.id for node in layout.nodes if node.output_level}
        self.endpoints = nn.ModuleDict({
            f"P{level}": ConvBnAct(layout.node(self.output_ids[level]).out_channels,
                                   spec.scaling.endpoints_num_filters, 1, activation=act)
            for level in self.levels})
        self.stem_ids = [node.id for node in stems]

    def _resample(self, parent: Node, target: Node, plan, spec: Spec) -> nn.Module:
        if self.mobile:
            return MobileResample(parent, target, spec.activation, plan.depthwise_convs)
        return ReferenceResample(parent, target, spec.scaling.resample_alpha, spec.activation, plan.stride2_conv)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        height, width = int(images.shape[-2]), int(images.shape[-1])
        x = self.stem_conv(images)
        features = {}
        for stem_id in self.stem_ids:
            x = self.blocks[stem_id](x)
            features[stem_id] = x
        for block_id, (level, parents, merged) in self.inputs.items():
            size = (feature_size(height, level), feature_size(width, level))
            features[block_id] = self.blocks[block_id]([features[p] for p in parents], [features[m] for m in merged], size)
        return {f"P{level}": self.endpoints[f"P{level}"](features[self.output_ids[level]]) for level in self.levels}
