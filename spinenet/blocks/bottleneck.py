"""Bottleneck block (ResNet v1, stride on the 3x3): 1x1 (width) -> 3x3 (width, stride) -> 1x1 (4 x width), plus
shortcut, then the activation. Output 4 x width channels."""
from __future__ import annotations

from spinescope.spinenet.blocks.base import describe_shortcut, register_block
from spinescope.spinenet.structure import Describer, Shape


@register_block("bottleneck", expansion=4, summary="1x1 -> 3x3 -> 1x1 (4x), residual")
def describe(d: Describer, name: str, in_channels: int, width: int, stride: int, activation: str,
             x: Shape) -> Shape:
    with d.module(name, "bottleneck"):
        y = d.conv_bn_act("conv1", in_channels, width, 1, x, activation=activation)
        y = d.conv_bn_act("conv2", width, width, 3, y, stride, activation)
        # The residual branch starts at zero (its BN's scale 0): the block starts as its shortcut.
        y = d.conv_bn_act("conv3", width, 4 * width, 1, y, activation=None, zero_gamma=True)
        describe_shortcut(d, in_channels, 4 * width, stride, x)
        d.op("add_", (y, y), y)  # in place into the last BN's output
        return d.activation("act", activation, y)
