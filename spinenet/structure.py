"""The network at one input size, described once and without torch: every module and every operator it runs.

A `Layer` is one module of the model, named exactly as PyTorch will name it (`backbone.blocks.b3.group.0.conv1.0`),
with its kind (conv, batch_norm, activation, linear, ... or a container such as bottleneck), the numbers its
constructor takes (`attrs`: channels, kernel, stride, groups, ...) and its children in registration order. A `Call`
is one operator its own forward runs at this input size, with input and output shapes (channels, height, width);
a shared module (the RetinaNet head's convs) has one call per level. Everything else is derived from this tree
and the operator table (`spinenet.operators`: per kind its module, output shape, count, saved tensors and
receptive-field step): `spinenet.modules` instantiates it, `analysis.counting.fast` sums fvcore's formulas over
its calls, and the receptive fields, the memory estimate, the block-type what-if and the graph's costs read it.

Describe functions (in `spinenet.blocks`, `spinenet.families`, `spinenet.heads`) build the tree through a
`Describer`, which keeps the shape bookkeeping in one place:

    with d.module("conv1", "sequential"):
        x = d.conv("0", cin, width, 1, x)
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from spinescope.spinenet.geometry import Shape
from spinescope.spinenet.operators import Call, leaf_output

# The forward function of each container kind: its module class's (`spinenet.containers`), registered when the
# class is defined (`spinenet.modules` imports them all).
FORWARDS: dict = {}


@dataclass
class Layer:
    """One module: full dotted `name` ("" is the model), `kind`, constructor `attrs`, `children` in registration
    order, the `calls` its own forward makes, and `role` for the path analyses ("main", or "side" for a branch
    that does not lie on a feature's path such as squeeze-excite). A leaf's `attrs` may also say how its weights
    start (`init`, `std`, `prior`; absent means the kind's default), which `spinenet.init` applies."""

    name: str
    kind: str
    attrs: dict = field(default_factory=dict)
    children: list["Layer"] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    role: str = "main"

    @property
    def local_name(self) -> str:
        return self.name.rpartition(".")[2]

    def child(self, local_name: str) -> "Layer":
        """Returns the direct child called `local_name`; raises KeyError if there is none."""
        for child in self.children:
            if child.local_name == local_name:
                return child
        raise KeyError(f"{self.name or '(model)'} has no child {local_name!r}")

    def has_child(self, local_name: str) -> bool:
        return any(child.local_name == local_name for child in self.children)

    def walk(self):
        """Yields this layer and every descendant, parents before children (PyTorch's `named_modules` order)."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, name: str) -> "Layer":
        """Returns the descendant with the full dotted `name`; raises KeyError if there is none."""
        layer = self
        prefix = self.name
        rest = name[len(prefix) + 1:] if prefix else name
        for part in rest.split(".") if rest else ():
            layer = layer.child(part)
        return layer


class Describer:
    """Builds a Layer tree. `module(...)` opens a container (a context manager), the leaf helpers add a module
    and its call and return the output shape, `op(...)` records a functional operator of the open container.
    Set `live` to False while describing dead code: its modules exist, its calls are marked not live. `semantics`
    ("reference" or "model_garden", the spec's) says how operators that the two code bases build differently are
    described: under Model Garden a strided convolution pads as TF 'SAME' (asymmetrically on even sides)."""

    def __init__(self, root_kind: str = "model", semantics: str = "reference", **attrs):
        self.root = Layer("", root_kind, attrs)
        self._stack = [self.root]
        self.live = True
        self.semantics = semantics
        self._order = 0

    @property
    def current(self) -> Layer:
        return self._stack[-1]

    def _name(self, local_name: str) -> str:
        parent = self.current.name
        return f"{parent}.{local_name}" if parent else local_name

    def add(self, local_name: str, kind: str, **attrs) -> Layer:
        """Adds a module (leaf or container) under the open container without entering it; returns it."""
        layer = Layer(self._name(local_name), kind, attrs, role="side" if self.current.role == "side" else "main")
        self.current.children.append(layer)
        return layer

    @contextmanager
    def module(self, local_name: str, kind: str, role: str | None = None, **attrs):
        """Opens container `local_name` of `kind`; the body describes its children and functional operators."""
        layer = self.add(local_name, kind, **attrs)
        if role:
            layer.role = role
        self._stack.append(layer)
        try:
            yield layer
        finally:
            self._stack.pop()

    @contextmanager
    def enter(self, layer: Layer):
        """Re-opens an existing container (e.g. to record calls of a module registered earlier)."""
        self._stack.append(layer)
        try:
            yield layer
        finally:
            self._stack.pop()

    def call(self, layer: Layer, x: Shape) -> Shape:
        """Records one call of leaf `layer` on input `x`; returns its output shape."""
        out = leaf_output(layer.kind, layer.attrs, x)
        layer.calls.append(Call(layer.kind, (x,), out, self.live, layer.attrs.get("kernel", 1),
                                layer.attrs.get("stride", 1), self._next_order()))
        return out

    def _next_order(self) -> int:
        self._order += 1
        return self._order

    def op(self, op: str, inputs: tuple[Shape, ...] | list[Shape], output: Shape, kernel: int = 1,
           stride: int = 1) -> Shape:
        """Records functional operator `op` run by the open container's forward; returns `output`."""
        self.current.calls.append(Call(op, tuple(inputs), output, self.live, kernel, stride, self._next_order()))
        return output

    # -- leaves ---------------------------------------------------------------------------------------------
    def conv(self, local_name: str, in_channels: int, out_channels: int, kernel: int, x: Shape, stride: int = 1,
             groups: int = 1, bias: bool = False, padding: int | None = None, init: str | None = None) -> Shape:
        """A k x k convolution (padding k // 2 unless given); returns its output shape. `init` names its kernel's
        initializer in `spinenet.init` where it is not the default (variance scaling). Under Model Garden semantics
        a strided convolution pads as TF 'SAME' (attr `same`; the same output side, other windows on even sides)."""
        same = {"same": True} if self.semantics == "model_garden" and stride > 1 and padding is None else {}
        layer = self.add(local_name, "conv", in_channels=in_channels, out_channels=out_channels, kernel=kernel,
                         stride=stride, padding=kernel // 2 if padding is None else padding, groups=groups,
                         bias=bias, **same, **({"init": init} if init else {}))
        return self.call(layer, x)

    def batch_norm(self, local_name: str, x: Shape, zero_gamma: bool = False) -> Shape:
        """A batch norm; `zero_gamma`: its scale starts at 0 (the last BN of a residual branch)."""
        layer = self.add(local_name, "batch_norm", channels=x[0], **({"init": "zeros"} if zero_gamma else {}))
        return self.call(layer, x)

    def activation(self, local_name: str, function: str, x: Shape) -> Shape:
        """An activation module ('relu', 'swish' or 'hard_swish'); returns `x`."""
        return self.call(self.add(local_name, "activation", function=function), x)

    def conv_bn_act(self, local_name: str, in_channels: int, out_channels: int, kernel: int, x: Shape,
                    stride: int = 1, activation: str | None = "relu", groups: int = 1, zero_gamma: bool = False,
                    conv_init: str | None = None) -> Shape:
        """Sequential(conv without bias, BN, optional activation) as `spinenet.modules` builds it; `zero_gamma` and
        `conv_init` as for `batch_norm` and `conv`."""
        with self.module(local_name, "conv_bn_act"):
            x = self.conv("0", in_channels, out_channels, kernel, x, stride, groups, init=conv_init)
            x = self.batch_norm("1", x, zero_gamma)
            if activation:
                x = self.activation("2", activation, x)
        return x

    def resize(self, x: Shape, height: int, width: int) -> Shape:
        """Nearest resize run by the open container; no operator when `x` already has that size."""
        target = (x[0], height, width)
        return x if x == target else self.op("resize", (x,), target)


def check_tree(root: Layer) -> None:
    """Raises ValueError if a module name is used twice."""
    seen = set()
    for layer in root.walk():
        if layer.name in seen:
            raise ValueError(f"module name {layer.name!r} described twice")
        seen.add(layer.name)
