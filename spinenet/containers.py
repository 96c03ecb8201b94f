"""The base of every container module (`class Bottleneck(DescribedModule)`) and `instantiate`, which builds any Layer.

A container class names its `kind`; its `__init__` takes the Layer that describes it and assigns the submodules
built from the Layer's children (`child`, `optional_child`) and the attrs its forward reads; its `forward` runs
them. The description stays the one source: `instantiate` refuses a class that registers other children, or in
another order, than its Layer describes, so state-dict keys are the description's names.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar

from torch import nn

from spinescope.spinenet.layers import ConvBnAct
from spinescope.spinenet.operators import OPERATORS
from spinescope.spinenet.structure import FORWARDS, Layer

# Container kind -> its module class, filled when a class is defined (`spinenet.modules` imports them all).
MODULE_CLASSES: dict[str, type["DescribedModule"]] = {}


class DescribedModule(nn.Module):
    """A container module built from its Layer; subclasses set `kind` and define `__init__(layer)` and `forward`."""

    kind: ClassVar[str]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind in MODULE_CLASSES or cls.kind in FORWARDS:
            raise ValueError(f"container kind {cls.kind!r} registered twice")
        MODULE_CLASSES[cls.kind] = cls
        FORWARDS[cls.kind] = cls.forward  # for modules that run a kind's forward on themselves (spinescope.api)


def child(layer: Layer, local_name: str) -> nn.Module:
    """Returns the module of `layer`'s child `local_name` with its subtree; raises KeyError if it has none."""
    return instantiate(layer.child(local_name))


def optional_child(layer: Layer, local_name: str) -> nn.Module | None:
    """Returns the module of `layer`'s child `local_name`, or None where the description has no such child."""
    return child(layer, local_name) if layer.has_child(local_name) else None


def _container_class(kind: str, name: str) -> type:
    if kind not in MODULE_CLASSES:
        raise ValueError(f"{name or '(model)'}: container kind {kind!r} has no module class")
    return MODULE_CLASSES[kind]


def _check_children(module: nn.Module, layer: Layer) -> None:
    built = [name for name, _ in module.named_children()]
    described = [grandchild.local_name for grandchild in layer.children]
    if built != described:
        raise ValueError(f"{layer.name or '(model)'}: {type(module).__name__} builds children {built}, its layer "
                         f"describes {described}")


def instantiate(layer: Layer) -> nn.Module:
    """Returns the module of `layer` with its whole subtree, on torch's current default device. Raises ValueError
    for a container kind without a module class, or a class whose children differ from the described ones."""
    if layer.kind in OPERATORS:
        return OPERATORS[layer.kind].module(layer.attrs)
    if layer.kind in ("sequential", "conv_bn_act"):
        container = ConvBnAct if layer.kind == "conv_bn_act" else nn.Sequential
        return container(OrderedDict((c.local_name, instantiate(c)) for c in layer.children))
    if layer.kind == "list":
        return nn.ModuleList(instantiate(c) for c in layer.children)
    if layer.kind == "dict":
        return nn.ModuleDict(OrderedDict((c.local_name, instantiate(c)) for c in layer.children))
    module = _container_class(layer.kind, layer.name)(layer)
    _check_children(module, layer)
    return module
