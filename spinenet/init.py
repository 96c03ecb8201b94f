"""The weights a model starts from, as the authors' TensorFlow code initializes them (not PyTorch's defaults).

`build_model` applies `initialize` to every model it builds. What each leaf starts from is described once, in its
Layer's `attrs` (absent: the kind's default):

- conv: `init` "variance_scaling" (default; TF's `variance_scaling_initializer()`: scale 1, fan-in, a normal
  truncated at 2 std with std sqrt(1 / fan_in) / 0.8796), "glorot_uniform" (Keras's default, which the authors'
  depthwise and separable convs take) or "normal" with `std`; the bias 0, or -log((1 - p) / p) with `prior` p;
- batch_norm: scale 1, or 0 with `init` "zeros" (the last BN of a bottleneck's or residual block's main path: the
  block starts as its shortcut, as in the authors' ResNet code, `init_zero=True`; their SpineNet blocks keep 1,
  which in torchvision's loop makes the first gradients of SpineNet-49 some 70x larger); shift 0; momentum and
  epsilon as in `spinenet.modules`;
- linear: Keras Dense's default, glorot uniform kernel and bias 0 (the authors' code does not say otherwise).

Fan-in is PyTorch's (in_channels / groups x kernel area), which is TF's for every conv initialized by variance
scaling here; glorot's fan-in + fan-out is the same sum in both frameworks for depthwise kernels too.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from spinescope.spinenet.structure import Layer

# The std of a unit normal truncated to [-2, 2]: TF divides by it so that the truncated draw has the asked std.
TRUNCATED_NORMAL_STD = 0.87962566103423978
CONV_INITS = ("variance_scaling", "glorot_uniform", "normal")


def variance_scaling_std(fan_in: int) -> float:
    """Returns the std of the untruncated normal TF's variance scaling (scale 1, fan-in) draws from."""
    return math.sqrt(1.0 / fan_in) / TRUNCATED_NORMAL_STD


def prior_bias(probability: float) -> float:
    """Returns the logit whose sigmoid is `probability`: -log((1 - p) / p)."""
    return -math.log((1 - probability) / probability)


def truncated_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """Fills `tensor` in place from N(0, std) truncated to [-2 std, 2 std], redrawing the values outside (as TF
    does; the distribution of `nn.init.trunc_normal_`, several times faster on the CPU); returns it."""
    flat = tensor.view(-1)
    flat.normal_(0.0, std)
    index = (flat.abs() > 2 * std).nonzero().squeeze(1)
    while index.numel():
        values = flat.new_empty(index.numel()).normal_(0.0, std)
        inside = values.abs() <= 2 * std
        flat[index[inside]] = values[inside]
        index = index[~inside]
    return tensor


def init_conv(conv: nn.Conv2d, attrs: dict) -> None:
    """Initializes `conv` in place as its Layer `attrs` say (see the module docstring)."""
    kind = attrs.get("init", "variance_scaling")
    weight = conv.weight
    if kind == "variance_scaling":
        truncated_normal_(weight, variance_scaling_std(weight[0].numel()))
    elif kind == "glorot_uniform":
        nn.init.xavier_uniform_(weight)
    elif kind == "normal":
        nn.init.normal_(weight, 0.0, attrs["std"])
    else:
        raise ValueError(f"unknown conv init {kind!r}; known: {', '.join(CONV_INITS)}")
    if conv.bias is not None:
        nn.init.constant_(conv.bias, prior_bias(attrs["prior"]) if "prior" in attrs else 0.0)


def init_batch_norm(norm: nn.BatchNorm2d, attrs: dict) -> None:
    """Sets the BN's scale to 1 (0 where `attrs` say "zeros"), its shift to 0 and its running statistics to
    mean 0, variance 1."""
    nn.init.constant_(norm.weight, 0.0 if attrs.get("init") == "zeros" else 1.0)
    nn.init.zeros_(norm.bias)
    norm.reset_running_stats()


def init_linear(linear: nn.Linear, attrs: dict) -> None:
    """Glorot uniform kernel, bias 0 (Keras Dense's default)."""
    nn.init.xavier_uniform_(linear.weight)
    nn.init.zeros_(linear.bias)


INITIALIZERS = {"conv": init_conv, "batch_norm": init_batch_norm, "linear": init_linear}


def initialize(root: Layer, model: nn.Module) -> nn.Module:
    """Sets every parameter and buffer of `model` (instantiated from `root`, so named as its Layers) in place as
    the Layers' attrs say, so `model` may come from `to_empty()`; returns `model`. Raises ValueError for a module
    with tensors of its own and no initializer (a new leaf kind needs a line in `INITIALIZERS`)."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for layer in root.walk():
            module = modules[layer.name]
            if layer.kind in INITIALIZERS:
                INITIALIZERS[layer.kind](module, layer.attrs)
            elif next(module.parameters(recurse=False), None) is not None or next(module.buffers(recurse=False),
                                                                                   None) is not None:
                raise ValueError(f"{layer.name}: no initializer for the tensors of a {layer.kind!r} module")
    return model
