"""Residual building blocks (ResNet v1 style, stride on the 3x3) and MBConv, and the block group that repeats them."""
from __future__ import annotations

import torch
from torch import nn

from spinenet.layers import ConvBnAct, make_activation
from spinenet.spec import MBCONV_EXPAND_RATIO, MBCONV_SE_RATIO


class Bottleneck(nn.Module):
    """1x1 (width) -> 3x3 (width, stride) -> 1x1 (4 x width), plus shortcut; output 4 x width channels."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1, activation: str = "relu"):
        super().__init__()
        out_channels = 4 * width
        self.conv1 = ConvBnAct(in_channels, width, 1, activation=activation)
        self.conv2 = ConvBnAct(width, width, 3, stride, activation=activation)
        self.conv3 = ConvBnAct(width, out_channels, 1, activation=None)
        self.shortcut = (ConvBnAct(in_channels, out_channels, 1, stride, activation=None)
                         if in_channels != out_channels or stride != 1 else nn.Identity())
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


class Residual(nn.Module):
    """3x3 (width, stride) -> 3x3 (width), plus shortcut; output `width` channels."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1, activation: str = "relu"):
        super().__init__()
        self.conv1 = ConvBnAct(in_channels, width, 3, stride, activation=activation)
        self.conv2 = ConvBnAct(width, width, 3, activation=None)
        self.shortcut = (ConvBnAct(in_channels, width, 1, stride, activation=None)
                         if in_channels != width or stride != 1 else nn.Identity())
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class SqueezeExcite(nn.Module):
    """Global pool -> 1x1 reduce (bias) -> activation -> 1x1 expand (bias) -> sigmoid gate."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(scale)


class MBConv(nn.Module):
    """Inverted bottleneck: 1x1 expand (x6) -> 3x3 depthwise (stride) -> SE (ratio 0.2 of the input width) ->
    1x1 project without activation; residual add when input and output shapes match."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1, activation: str = "swish",
                 expand_ratio: int = MBCONV_EXPAND_RATIO, se_ratio: float = MBCONV_SE_RATIO):
        super().__init__()
        expanded = in_channels * expand_ratio
        self.expand = ConvBnAct(in_channels, expanded, 1, activation=activation) if expand_ratio > 1 else None
        self.depthwise = ConvBnAct(expanded, expanded, 3, stride, activation=activation, groups=expanded)
        self.se = SqueezeExcite(expanded, max(1, int(in_channels * se_ratio))) if se_ratio > 0 else None
        self.project = ConvBnAct(expanded, width, 1, activation=None)
        self.use_residual = in_channels == width and stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.use_residual else y


BLOCK_CLASSES = {"bottleneck": Bottleneck, "residual": Residual, "mbconv": MBConv}


class BlockGroup(nn.Sequential):
    """`repeats` blocks of one type; only the first changes channels or stride."""

    def __init__(self, block_fn: str, in_channels: int, width: int, repeats: int = 1, stride: int = 1,
                 activation: str = "relu"):
        block_class = BLOCK_CLASSES[block_fn]
        out_channels = width * block_class.expansion
        blocks = [block_class(in_channels, width, stride, activation)]
        blocks += [block_class(out_channels, width, 1, activation) for _ in range(1, repeats)]
        super().__init__(*blocks)
        self.out_channels = out_channels
