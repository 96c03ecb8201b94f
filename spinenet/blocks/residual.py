"""Residual (basic) block: 3x3 (width, stride) -> 3x3 (width), plus shortcut, then the activation. Output `width`
channels."""
from __future__ import annotations

from spinescope.spinenet.blocks.base import describe_shortcut, register_block
from spinescope.spinenet.structure import Describer, Shape


@register_block("residual", expansion=1, summary="3x3 -> 3x3, residual")
def describe(d: Describer, name: str, in_channels: int, width: int, stride: int, activation: str,
             x: Shape) -> Shape:
    with d.module(name, "residual"):
        y = d.conv_bn_act("conv1", in_channels, width, 3, x, stride, activation)
        # The residual branch starts at zero (its BN's scale 0): the block starts as its shortcut.
        y = d.conv_bn_act("conv2", width, width, 3, y, activation=None, zero_gamma=True)
        describe_shortcut(d, in_channels, width, stride, x)
        d.op("add_", (y, y), y)  # in place into the last BN's output
        return d.activation("act", activation, y)
