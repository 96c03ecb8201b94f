"""Every operator a description records, in one table (`OPERATORS`): for each kind, the leaf module it is (its
PyTorch module, output shape and parameters) and how each analysis reads one call of it: fvcore's count, the
tensors autograd saves for backward, and the receptive-field step. Adding an operator is one entry here.

A leaf kind (`module` and `output` set) is a module of the model; the other kinds are functional operators that a
container's forward runs (add, resize, mean, ...), recorded by the describing code with their output shape.
Torch is imported only when a module is built, so describing and counting stay torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Callable

from spinescope.spinenet.geometry import (Shape, conv_output_side, pair, same_output_side, same_padding,
                                         same_pool_arguments)

# TF's batch-norm momentum 0.99 is PyTorch's 0.01; epsilon as in the TF2 Model Garden.
BN_MOMENTUM = 0.01
BN_EPS = 1e-3
FP32_BYTES, INT64_BYTES = 4, 8


@dataclass(frozen=True)
class Call:
    """One operator run at this input size. `op`: the leaf's kind for a module call, or a functional operator
    run inside a container's forward (add, resize, max_pool_same, mean, sigmoid, mul, relu, stack, ...).
    `kernel` and `stride` (pixels) are those of a convolution or pooling; `live` is False for dead code (its result
    reaches no output; fvcore's trace drops it)."""

    op: str
    inputs: tuple[Shape, ...]
    output: Shape
    live: bool = True
    kernel: int = 1
    stride: int = 1
    order: int = 0  # position in the forward pass: calls of a container and of its children interleave


def _nothing(*_) -> dict:
    return {}


def _no_tensors(_attrs) -> tuple[int, ...]:
    return ()


def _no_bytes(_attrs) -> int:
    return 0


@dataclass(frozen=True)
class Operator:
    """One operator kind.

    module(attrs) -> nn.Module and output(attrs, input shape) -> output shape: a leaf module's (None otherwise).
    parameters(attrs): elements of each trainable tensor (weight first); buffer_bytes(attrs): its buffers' bytes.
    counted(attrs, call) -> {fvcore operator: count} (fvcore's handle; MACs for conv and linear);
    uncounted(attrs, call) -> {JIT operator: times run} for what fvcore has no handle for; both empty: ignored.
    saved(attrs) -> what autograd keeps for backward: "inputs" (every input), "output", "statistics" (two fp32
    values per channel), "indices" (int64 per output element); None: no rule known.
    window: a k x k window (kernel and stride widen the receptive field); weighted: a weighted layer on a path.
    half_weight_copy: autocast saves a half-precision copy of its weight; returns_input: no new tensor.
    """

    kind: str
    module: Callable | None = None
    output: Callable[[dict, Shape], Shape] | None = None
    parameters: Callable[[dict], tuple[int, ...]] = _no_tensors
    buffer_bytes: Callable[[dict], int] = _no_bytes
    counted: Callable[[dict, Call], dict[str, int]] = _nothing
    uncounted: Callable[[dict, Call], dict[str, int]] = _nothing
    saved: Callable[[dict], tuple[str, ...]] | None = None
    window: bool = False
    weighted: bool = False
    half_weight_copy: bool = False
    returns_input: bool = False

    @property
    def is_leaf(self) -> bool:
        return self.output is not None

    def params(self, attrs: dict) -> int:
        """Returns the trainable parameters of a leaf with `attrs` (0 for a functional operator)."""
        return sum(self.parameters(attrs))


def _torch_nn():
    from torch import nn  # only when a module is built

    return nn


def _same_shape(_attrs, x: Shape) -> Shape:
    return x


def _binned(attrs, x: Shape) -> Shape:
    return x[0], attrs["bins"], attrs["bins"]


def _saves(*tags: str):
    return lambda _attrs: tags


def _runs(jit_name: str):
    return lambda _attrs, _call: {jit_name: 1}


def _adds(jit_name: str):
    return lambda _attrs, call: {jit_name: len(call.inputs) - 1}


# -- conv --------------------------------------------------------------------------------------------------------
def conv_weights(attrs: dict) -> int:
    """Returns the elements of a convolution's kernel."""
    return attrs["out_channels"] * (attrs["in_channels"] // attrs["groups"]) * attrs["kernel"] ** 2


def _conv_module(a):
    if a.get("same"):  # Model Garden's strided convs: TF 'SAME' padding
        from spinescope.spinenet.layers import Conv2dSame

        return Conv2dSame(a["in_channels"], a["out_channels"], a["kernel"], a["stride"], groups=a["groups"],
                          bias=a["bias"])
    return _torch_nn().Conv2d(a["in_channels"], a["out_channels"], a["kernel"], a["stride"], a["padding"],
                              groups=a["groups"], bias=a["bias"])


def _conv_output(a, x: Shape) -> Shape:
    k, s, p = a["kernel"], a["stride"], a["padding"]
    return a["out_channels"], conv_output_side(x[1], k, s, p), conv_output_side(x[2], k, s, p)


def _conv_macs(a, call: Call) -> dict[str, int]:  # fvcore's conv_flop_jit: bias not counted
    return {"conv": conv_weights(a) * call.output[1] * call.output[2]}


def _conv_pad(a, call: Call) -> dict[str, int]:
    """A SAME conv pads a copy first where the padding is asymmetric on an axis (`layers.Conv2dSame`)."""
    if not a.get("same"):
        return {}
    sides = call.inputs[0][1:]
    asymmetric = any(before != after for before, after in (same_padding(side, a["kernel"], a["stride"])
                                                            for side in sides))
    return {"aten::pad": 1} if asymmetric else {}


# -- batch norm, activation, linear ------------------------------------------------------------------------------
def _batch_norm_module(a):
    return _torch_nn().BatchNorm2d(a["channels"], momentum=BN_MOMENTUM, eps=BN_EPS)


def _activation_module(a):
    # In place: every activation module runs on a tensor nothing else reads (a BN's, conv's or sum's output).
    nn = _torch_nn()
    return {"relu": nn.ReLU, "swish": nn.SiLU, "hard_swish": nn.Hardswish}[a["function"]](inplace=True)


_ACTIVATION_JIT = {"swish": "aten::silu_", "hard_swish": "aten::hardswish_"}  # fvcore has no handle; relu: ignored


def _linear_module(a):
    return _torch_nn().Linear(a["in_features"], a["out_features"])


# -- pooling -----------------------------------------------------------------------------------------------------
def _max_pool_same_module(a):
    from spinescope.spinenet.layers import MaxPoolSame

    return MaxPoolSame(a["kernel"], a["stride"])


def _max_pool_same_output(a, x: Shape) -> Shape:
    stride_h, stride_w = pair(a["stride"])
    return x[0], same_output_side(x[1], stride_h), same_output_side(x[2], stride_w)


def _max_pool_same_jit_ops(_attrs, call: Call) -> dict[str, int]:
    # max_pool2d's own padding where it can (geometry.same_pool_arguments), else a pad first
    height, width = call.inputs[0][1], call.inputs[0][2]
    if same_pool_arguments(height, width, call.kernel, call.stride):
        return {"aten::max_pool2d": 1}
    return {"aten::pad": 1, "aten::max_pool2d": 1}


_ENTRIES = (
    Operator("conv", _conv_module, _conv_output,
             parameters=lambda a: (conv_weights(a),) + ((a["out_channels"],) if a["bias"] else ()),
             counted=_conv_macs, uncounted=_conv_pad, saved=_saves("inputs"), window=True, weighted=True,
             half_weight_copy=True),
    Operator("batch_norm", _batch_norm_module, _same_shape,
             parameters=lambda a: (a["channels"], a["channels"]),
             buffer_bytes=lambda a: 2 * a["channels"] * FP32_BYTES + INT64_BYTES,  # running mean, var; count
             counted=lambda a, call: {"batch_norm": 2 * prod(call.inputs[0])}, saved=_saves("inputs", "statistics")),
    Operator("activation", _activation_module, _same_shape,
             uncounted=lambda a, call: {_ACTIVATION_JIT[a["function"]]: 1} if a["function"] in _ACTIVATION_JIT else {},
             saved=lambda a: {"relu": ("output",), "swish": ("inputs",), "hard_swish": ("inputs",)}[a["function"]]),
    Operator("linear", _linear_module, lambda a, x: (a["out_features"], 1, 1),
             parameters=lambda a: (a["in_features"] * a["out_features"], a["out_features"]),
             counted=lambda a, call: {"linear": a["in_features"] * a["out_features"]}, saved=_saves("inputs"),
             half_weight_copy=True),
    Operator("adaptive_avg_pool", lambda a: _torch_nn().AdaptiveAvgPool2d(a["bins"]), _binned,
             counted=lambda a, call: {"adaptive_avg_pool2d": prod(call.inputs[0])}, saved=_saves("inputs")),
    Operator("adaptive_max_pool", lambda a: _torch_nn().AdaptiveMaxPool2d(a["bins"]), _binned,
             uncounted=_runs("aten::adaptive_max_pool2d")),
    Operator("max_pool_same", _max_pool_same_module, _max_pool_same_output,
             uncounted=_max_pool_same_jit_ops, saved=_saves("inputs", "indices"), window=True),
    Operator("identity", lambda a: _torch_nn().Identity(), _same_shape, saved=_saves(), returns_input=True),
    # Functional operators of containers' forwards.
    Operator("add", uncounted=_adds("aten::add"), saved=_saves()),
    Operator("add_", uncounted=_adds("aten::add_"), saved=_saves()),  # in place (a block's residual add)
    Operator("resize", counted=lambda a, call: {"upsample_nearest2d": prod(call.output)}, saved=_saves()),
    Operator("mean", uncounted=_runs("aten::mean"), saved=_saves()),
    Operator("sigmoid", uncounted=_runs("aten::sigmoid"), saved=_saves("output")),
    # Model Garden's hard sigmoid gate, relu6(x + 3) * 0.16667 (`layers.hard_sigmoid`)
    Operator("hard_sigmoid", uncounted=lambda a, call: {"aten::add": 1, "aten::relu6": 1, "aten::mul": 1},
             saved=_saves("inputs")),
    Operator("mul", uncounted=_runs("aten::mul"), saved=_saves("inputs")),
    Operator("relu", saved=_saves("output")),  # fvcore ignores relu and stack (its _IGNORED_OPS)
    Operator("stack", saved=_saves()),
)

OPERATORS: dict[str, Operator] = {entry.kind: entry for entry in _ENTRIES}
LEAF_KINDS = tuple(kind for kind, entry in OPERATORS.items() if entry.is_leaf)


def operator(kind: str) -> Operator:
    """Returns the Operator of `kind`; raises KeyError for a kind the table does not know."""
    try:
        return OPERATORS[kind]
    except KeyError:
        raise KeyError(f"no operator {kind!r} in spinenet.operators.OPERATORS") from None


def leaf_output(kind: str, attrs: dict, x: Shape) -> Shape:
    """Returns the output shape of leaf module `kind` with `attrs` on an input of shape `x`."""
    return operator(kind).output(attrs, x)


def layer_params(kind: str, attrs: dict) -> int:
    """Returns the trainable parameters a module of `kind` holds itself (0 for a container)."""
    return OPERATORS[kind].params(attrs) if kind in OPERATORS else 0
