"""Heads on P3-P7: the RetinaNet head of the paper and a classification head."""
from __future__ import annotations

import torch
from torch import nn

from spinenet.layers import batch_norm, make_activation, resize_nearest


def head_conv(in_channels: int, out_channels: int, separable: bool) -> nn.Module:
    """3x3 conv with bias; separable = 3x3 depthwise (no bias) then 1x1 pointwise with bias (Keras SeparableConv2D)."""
    if separable:
        return nn.Sequential(nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
                             nn.Conv2d(in_channels, out_channels, 1))
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class Subnet(nn.Module):
    """`num_convs` 3x3 convs shared across levels, each followed by a per-level BN and activation, then a 3x3
    predictor with `out_channels` outputs."""

    def __init__(self, levels, width, num_convs, out_channels, separable, activation):
        super().__init__()
        self.convs = nn.ModuleList(head_conv(width, width, separable) for _ in range(num_convs))
        self.norms = nn.ModuleDict({f"P{level}": nn.ModuleList(batch_norm(width) for _ in range(num_convs))
                                    for level in levels})
        self.act = make_activation(activation)
        self.predict = head_conv(width, out_channels, separable)

    def forward(self, x: torch.Tensor, level: str) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms[level]):
            x = self.act(norm(conv(x)))
        return self.predict(x)


class RetinaNetHead(nn.Module):
    """Class subnet (num_classes x anchors outputs) and box subnet (4 x anchors outputs) on every level.
    Returns {"P3": (class_logits, box_deltas), ...}."""

    def __init__(self, levels, width, num_convs=4, num_classes=91, num_anchors=9, separable=False,
                 activation="relu"):
        super().__init__()
        self.class_net = Subnet(levels, width, num_convs, num_classes * num_anchors, separable, activation)
        self.box_net = Subnet(levels, width, num_convs, 4 * num_anchors, separable, activation)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return {level: (self.class_net(x, level), self.box_net(x, level)) for level, x in features.items()}


class ClassificationHead(nn.Module):
    """P3-P7 resized (nearest) to P3's size and averaged, then global average pooling ('gap') or spatial pyramid
    pooling over 1x1, 2x2 and 4x4 bins ('spp'), then a linear classifier. Returns logits [N, num_classes]."""

    SPP_BINS = (1, 2, 4)

    def __init__(self, width: int, num_classes: int = 1000, pooling: str = "gap"):
        super().__init__()
        self.pooling = pooling
        bins = sum(b * b for b in self.SPP_BINS) if pooling == "spp" else 1
        self.pool = nn.ModuleList(nn.AdaptiveAvgPool2d(b) for b in (self.SPP_BINS if pooling == "spp" else (1,)))
        self.fc = nn.Linear(width * bins, num_classes)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        maps = list(features.values())
        size = maps[0].shape[-2:]
        x = torch.stack([resize_nearest(m, size) for m in maps]).mean(0)
        return self.fc(torch.cat([pool(x).flatten(1) for pool in self.pool], dim=1))
