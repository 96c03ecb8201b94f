"""Structure -> torch.nn.Module: every Layer becomes the module of its kind, named as the Layer is.

Leaf kinds map to PyTorch modules through their entry in `spinenet.operators.OPERATORS`; `sequential`, `list`
and `dict` are PyTorch's containers; every other container kind is a small class whose forward is the function
its describing module registered (`spinenet.structure.forward_for`), holding the Layer's children and `attrs`.
So the module tree is the description, name for name, and the blocks' forwards stay readable in the files that
describe them.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from spinescope.spinenet.layers import ConvBnAct
from spinescope.spinenet.operators import OPERATORS
from spinescope.spinenet.structure import FORWARDS, Layer


class DescribedModule(nn.Module):
    """A container built from a Layer: its children as submodules and its `attrs` as plain attributes."""

    def __init__(self, layer: Layer):
        super().__init__()
        for child in layer.children:
            self.add_module(child.local_name, instantiate(child))
        for key, value in layer.attrs.items():
            setattr(self, key, value)


_classes: dict[str, type] = {}


def module_class(kind: str) -> type:
    """Returns the module class of container `kind` (e.g. `Bottleneck` for "bottleneck"), made once."""
    if kind not in _classes:
        name = "".join(part.capitalize() for part in kind.split("_"))
        _classes[kind] = type(name, (DescribedModule,), {"forward": FORWARDS[kind], "__module__": __name__})
    return _classes[kind]


def instantiate(layer: Layer) -> nn.Module:
    """Returns the module of `layer` with its whole subtree, on torch's current default device."""
    if layer.kind in OPERATORS:
        return OPERATORS[layer.kind].module(layer.attrs)
    if layer.kind in ("sequential", "conv_bn_act"):
        container = ConvBnAct if layer.kind == "conv_bn_act" else nn.Sequential
        return container(OrderedDict((child.local_name, instantiate(child)) for child in layer.children))
    if layer.kind == "list":
        return nn.ModuleList(instantiate(child) for child in layer.children)
    if layer.kind == "dict":
        return nn.ModuleDict(OrderedDict((child.local_name, instantiate(child)) for child in layer.children))
    return module_class(layer.kind)(layer)
