"""ResNet-50/101/152 (v1, stride on the 3x3) with the authors' FPN: lateral 1x1s, nearest top-down path, 3x3 output
convs on P3-P5, P6 from P5, P7 from ReLU(P6), then a separate BN (no activation) on each of P3-P7."""
from __future__ import annotations

import torch
from torch import nn

from spinenet.blocks import Bottleneck
from spinenet.layers import ConvBnAct, MaxPoolSame, batch_norm, resize_nearest
from spinenet.layout import Layout


class FpnLevel(nn.Module):
    """One FPN output. P3-P5: lateral 1x1 from C_l and a 3x3 output conv; P6/P7: a 3x3 stride-2 conv. All with
    bias, followed by the level's own BN."""

    def __init__(self, in_channels: int, width: int, lateral: bool):
        super().__init__()
        self.lateral = nn.Conv2d(in_channels, width, 1) if lateral else None
        self.conv = nn.Conv2d(width, width, 3, 1 if lateral else 2, 1)
        self.bn = batch_norm(width)


class ResNetFPN(nn.Module):
    """Returns {"P3": tensor, ..., "P7": tensor}, every level with `fpn_num_filters` channels."""

    def __init__(self, layout: Layout):
        super().__init__()
        spec = layout.spec
        self.blocks = nn.ModuleDict()
        self.stage_ids: dict[int, list[str]] = {}
        width = spec.scaling.endpoints_num_filters
        for node in layout.nodes:
            if node.role == "stem":
                self.blocks[node.id] = nn.Sequential(ConvBnAct(3, 64, 7, 2, activation=spec.activation),
                                                     MaxPoolSame(3, 2))
            elif node.role == "block":
                stride = 2 if node.id.endswith("_0") and node.level > 2 else 1
                self.blocks[node.id] = Bottleneck(node.in_channels, node.out_channels // 4, stride, spec.activation)
                self.stage_ids.setdefault(node.level, []).append(node.id)
            elif node.role == "fpn":
                self.blocks[node.id] = FpnLevel(node.in_channels, width, lateral=node.level <= 5)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.blocks["stem"](images)
        stage_outputs = {}
        for level, ids in self.stage_ids.items():
            for block_id in ids:
                x = self.blocks[block_id](x)
            stage_outputs[level] = x
        merged = {5: self.blocks["P5"].lateral(stage_outputs[5])}
        for level in (4, 3):
            lateral = self.blocks[f"P{level}"].lateral(stage_outputs[level])
            # Nearest 2x upsampling, written as a resize to the lateral's size so that odd sizes work too.
            merged[level] = resize_nearest(merged[level + 1], lateral.shape[-2:]) + lateral
        pre_bn = {level: self.blocks[f"P{level}"].conv(merged[level]) for level in (3, 4, 5)}
        pre_bn[6] = self.blocks["P6"].conv(pre_bn[5])
        pre_bn[7] = self.blocks["P7"].conv(torch.relu(pre_bn[6]))
        return {f"P{level}": self.blocks[f"P{level}"].bn(pre_bn[level]) for level in range(3, 8)}
