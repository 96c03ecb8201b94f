"""MBConv (inverted bottleneck, Mobile SpineNet): 1x1 expand (x6) -> 3x3 depthwise (stride) -> squeeze-excite
(ratio 0.2 of the input width) -> 1x1 project without activation; residual add when the input and output shapes
match. Output `width` channels."""
from __future__ import annotations

from spinescope.spinenet.blocks.base import register_block
from spinescope.spinenet.structure import Describer, Shape

EXPAND_RATIO = 6
SE_RATIO = 0.2


@register_block("mbconv", expansion=1, summary="1x1 expand x6 -> 3x3 depthwise -> SE -> 1x1")
def describe(d: Describer, name: str, in_channels: int, width: int, stride: int, activation: str,
             x: Shape) -> Shape:
    expanded = in_channels * EXPAND_RATIO
    with d.module(name, "mbconv", residual=in_channels == width and stride == 1):
        y = d.conv_bn_act("expand", in_channels, expanded, 1, x, activation=activation) if EXPAND_RATIO > 1 else x
        # The authors' depthwise conv takes Keras's default kernel initializer (glorot uniform), not variance scaling.
        y = d.conv_bn_act("depthwise", expanded, expanded, 3, y, stride, activation, groups=expanded,
                          conv_init="glorot_uniform")
        if SE_RATIO > 0:
            describe_squeeze_excite(d, expanded, max(1, int(in_channels * SE_RATIO)), y)
        # The projection's BN keeps scale 1, as in the authors' mbconv block: where there is no residual add, a zero
        # scale would make the block's output 0.
        y = d.conv_bn_act("project", expanded, width, 1, y, activation=None)
        if in_channels == width and stride == 1:
            d.op("add_", (y, x), y)  # in place into the projection's output
        return y


def describe_squeeze_excite(d: Describer, channels: int, reduced: int, x: Shape) -> None:
    """Global average pool -> 1x1 reduce (bias) -> ReLU -> 1x1 expand (bias) -> sigmoid gate on `x` (under Model
    Garden semantics a hard sigmoid, relu6(x + 3) * 0.16667). A side branch: it does not lie on a feature's
    receptive-field path."""
    gate = "hard_sigmoid" if d.semantics == "model_garden" else "sigmoid"
    with d.module("se", "squeeze_excite", role="side", **({"gate": gate} if gate != "sigmoid" else {})):
        pooled = d.op("mean", (x,), (x[0], 1, 1))
        y = d.conv("reduce", channels, reduced, 1, pooled, bias=True)
        y = d.activation("act", "relu", y)
        y = d.conv("expand", reduced, channels, 1, y, bias=True)
        d.op(gate, (y,), y)
        d.op("mul", (x, y), x)
