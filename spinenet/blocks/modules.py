"""The block types' modules (torch): each built from the Layer its block type's `describe` adds, named as it."""
from __future__ import annotations

from spinescope.spinenet.containers import DescribedModule, child, optional_child
from spinescope.spinenet.layers import hard_sigmoid
from spinescope.spinenet.structure import Layer


class Bottleneck(DescribedModule):
    """1x1 -> 3x3 (stride) -> 1x1 (4 x width), plus the shortcut, then the activation (`blocks.bottleneck`)."""

    kind = "bottleneck"

    def __init__(self, layer: Layer):
        super().__init__()
        self.conv1 = child(layer, "conv1")
        self.conv2 = child(layer, "conv2")
        self.conv3 = child(layer, "conv3")
        self.shortcut = child(layer, "shortcut")
        self.act = child(layer, "act")

    def forward(self, x):
        y = self.conv3(self.conv2(self.conv1(x)))
        return self.act(y.add_(self.shortcut(x)))  # in place: y is the last BN's output, read by nothing else


class Residual(DescribedModule):
    """3x3 (stride) -> 3x3, plus the shortcut, then the activation (`blocks.residual`)."""

    kind = "residual"

    def __init__(self, layer: Layer):
        super().__init__()
        self.conv1 = child(layer, "conv1")
        self.conv2 = child(layer, "conv2")
        self.shortcut = child(layer, "shortcut")
        self.act = child(layer, "act")

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return self.act(y.add_(self.shortcut(x)))  # in place: y is the last BN's output, read by nothing else


class Mbconv(DescribedModule):
    """1x1 expand -> 3x3 depthwise (stride) -> squeeze-excite -> 1x1 project, plus the input where the shapes
    match (`blocks.mbconv`)."""

    kind = "mbconv"

    def __init__(self, layer: Layer):
        super().__init__()
        self.expand = optional_child(layer, "expand")
        self.depthwise = child(layer, "depthwise")
        self.se = optional_child(layer, "se")
        self.project = child(layer, "project")
        self.residual = layer.attrs["residual"]

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return y.add_(x) if self.residual else y  # in place: y is the projection BN's output


class SqueezeExcite(DescribedModule):
    """Global average pool -> 1x1 reduce -> ReLU -> 1x1 expand -> sigmoid gate on the input (Model Garden: hard
    sigmoid)."""

    kind = "squeeze_excite"

    def __init__(self, layer: Layer):
        super().__init__()
        self.reduce = child(layer, "reduce")
        self.act = child(layer, "act")
        self.expand = child(layer, "expand")
        self.hard_gate = layer.attrs.get("gate") == "hard_sigmoid"

    def forward(self, x):
        scale = self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * (hard_sigmoid(scale) if self.hard_gate else scale.sigmoid())
