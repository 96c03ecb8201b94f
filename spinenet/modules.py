"""Structure -> torch.nn.Module: every Layer becomes the module of its kind, named as the Layer is.

Leaf kinds map to PyTorch modules through their entry in `spinenet.operators.OPERATORS`; `sequential`, `list`
and `dict` are PyTorch's containers; every other container kind is a class of its own (`spinenet.containers`):
the model's below, the block types' in `spinenet.blocks.modules`, the families' in `spinenet.families.modules`,
the heads' in `spinenet.heads.modules`. Importing this module defines them all, so `instantiate` finds each kind.
"""
from __future__ import annotations

from spinescope.spinenet.blocks import modules as block_modules  # noqa: F401 - defines the block types' classes
from spinescope.spinenet.containers import DescribedModule, child, instantiate, optional_child
from spinescope.spinenet.families import modules as family_modules  # noqa: F401 - defines the families' classes
from spinescope.spinenet.heads import modules as head_modules  # noqa: F401 - defines the heads' classes
from spinescope.spinenet.structure import Layer

__all__ = ["Model", "instantiate"]


class Model(DescribedModule):
    """The whole model: `backbone`, and `head` (None for the backbone alone). Returns the backbone's features
    {"P3": tensor, ...} without a head, else the head's output."""

    kind = "model"

    def __init__(self, layer: Layer):
        super().__init__()
        self.backbone = child(layer, "backbone")
        self.head = optional_child(layer, "head")

    def forward(self, images):
        features = self.backbone(images)
        return features if self.head is None else self.head(features)
