"""Small torch pieces the described modules use: conv-BN-activation, TF-style SAME max-pooling, nearest resizing.

Sizes the forwards compute (SAME padding, resampling targets) are Python ints in eager mode. Under
`dynamic_shapes()` (which `spinescope.export_onnx` enters, as does torch.onnx's TorchScript exporter) they are
computed from the tensors' shapes with tensor operations instead, so that a trace records the arithmetic rather than
the numbers of the example input, and the traced graph is right at other sizes; the resampling functions then
express every size-dependent choice (which SAME padding, which pool, which resize) as data: gathers, selections.
Both give the same numbers, bit for bit."""
from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from spinescope.spinenet.geometry import pair, same_padding, same_pool_arguments

class _State(threading.local):
    dynamic = None  # inside dynamic_shapes(): its `enabled`; None outside
    shared = None  # inside dynamic_shapes(enabled=True): what `shared` made


_state = _State()


@contextmanager
def dynamic_shapes(enabled: bool = True):
    """Within this block (this thread), forwards derive sizes from tensor shapes with tensor operations, so that
    `torch.jit.trace` or `torch.onnx.export` records a graph that is right at any input size (slower in eager mode;
    the results are the same). fvcore's trace, outside it, still sees the eager operators. `enabled=False` makes
    the forwards use Python ints even while torch.onnx exports (a graph for the example's size alone)."""
    previous = _state.dynamic, _state.shared
    _state.dynamic, _state.shared = enabled, {} if enabled else None
    try:
        yield
    finally:
        _state.dynamic, _state.shared = previous


def shared(label: str, operands: tuple, compute):
    """Returns compute(), made once per `label` and `operands` (the same objects: the sizes of one level) while a
    trace runs within one `dynamic_shapes()` block, so that the traced graph holds each size computation once;
    computed every time elsewhere (nothing kept)."""
    memo = _state.shared
    if memo is None or not torch.jit.is_tracing():
        return compute()
    key = (label, *map(id, operands))
    if key not in memo:
        memo[key] = operands, compute()  # the operands kept alive: their ids stay theirs
    return memo[key][1]


def shapes_are_dynamic() -> bool:
    """Whether sizes are to be computed as tensors: inside `dynamic_shapes()`, or (outside any `dynamic_shapes`)
    while torch.onnx's TorchScript exporter traces, whatever its dynamic axes; not while fvcore or a plain
    torch.jit.trace traces."""
    if _state.dynamic is not None:
        return _state.dynamic
    exporter = sys.modules.get("torch.onnx")  # not imported: not exporting (and no import on the way)
    return exporter is not None and torch.jit.is_tracing() and exporter.is_in_onnx_export()


def side(x: torch.Tensor, dim: int):
    """Returns x.shape[dim]: an int in eager mode, a 0-dim int64 tensor under `dynamic_shapes()` (what a trace
    records as the shape's value)."""
    value = x.shape[dim]
    if not shapes_are_dynamic():
        return int(value)  # while tracing, a shape's value is a tensor: taken as a constant here
    return value if isinstance(value, torch.Tensor) else torch.tensor(value)


def on(condition: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Returns a 0-dim condition computed from sizes (CPU tensors) on `like`'s device, for torch.where (as it is
    on the CPU: no copy, and no node in a trace)."""
    return condition if condition.device == like.device else condition.to(like.device)


def ceil_div(value, divisor: int):
    """Returns ceil(value / divisor) for a non-negative int or int64 tensor (no negative floor division, which
    exporters translate inconsistently)."""
    return (value + (divisor - 1)) // divisor


class ConvBnAct(nn.Sequential):
    """conv (no bias) -> BN -> optional activation, as the structure's `conv_bn_act` describes it. A class of its
    own so that batch-norm folding (`analysis.latency`) finds exactly these conv -> BN pairs."""


class Conv2dSame(nn.Conv2d):
    """A convolution with TF 'SAME' padding, as Model Garden's strided convs: output side ceil(side / stride), the
    padding (`geometry.same_padding`) split with the extra pixel after, so on an even side a 3x3/2 conv pads 0 before
    and 1 after, a 7x7/2 conv 2 and 3 (PyTorch's symmetric padding=k//2 would pad 1 and 1, 3 and 3: the same output
    size, other windows). Symmetric SAME padding is the conv's own; otherwise a zero-padded copy first. Its
    parameters are nn.Conv2d's (the same state-dict keys)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, groups: int = 1,
                 bias: bool = False):
        super().__init__(in_channels, out_channels, kernel, stride, 0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kernel_h, kernel_w), (stride_h, stride_w) = self.kernel_size, self.stride
        if shapes_are_dynamic():
            pad_h = _same_pads(side(x, -2), kernel_h, stride_h)
            pad_w = _same_pads(side(x, -1), kernel_w, stride_w)
            return self._conv_forward(F.pad(x, [*pad_w, *pad_h]), self.weight, self.bias)
        pad_h = same_padding(int(x.shape[-2]), kernel_h, stride_h)
        pad_w = same_padding(int(x.shape[-1]), kernel_w, stride_w)
        if pad_h[0] == pad_h[1] and pad_w[0] == pad_w[1]:
            return F.conv2d(x, self.weight, self.bias, self.stride, (pad_h[0], pad_w[0]), 1, self.groups)
        return self._conv_forward(F.pad(x, [*pad_w, *pad_h]), self.weight, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", padding=SAME"


HARD_SIGMOID_SCALE = 0.16667  # Model Garden's constant (official/modeling/activations/sigmoid.py), not 1/6


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Model Garden's hard sigmoid: relu6(x + 3) * 0.16667 (its squeeze-excite gate in Mobile SpineNet)."""
    return F.relu6(x + 3.0) * HARD_SIGMOID_SCALE


def max_pool_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    """Max-pool with TF 'SAME' padding: output side ceil(side / stride), extra padding at the end; `kernel` and
    `stride` are ints or (height, width) pairs. Where PyTorch's max_pool2d can do it with its own padding (and
    ceil_mode for one extra pixel at the end) it does, without a padded copy; otherwise the input is padded with
    -inf first. Both give the same windows: the same result. Under `dynamic_shapes()` the padding is computed from
    the shape (it depends on each side's remainder), always as a -inf pad."""
    (kernel_h, kernel_w), (stride_h, stride_w) = pair(kernel), pair(stride)
    if shapes_are_dynamic():
        pads = [_same_pads(side(x, dim), k, s) for dim, k, s in ((-1, kernel_w, stride_w), (-2, kernel_h, stride_h))]
        return F.max_pool2d(F.pad(x, [*pads[0], *pads[1]], value=float("-inf")), kernel, stride)
    height, width = int(x.shape[-2]), int(x.shape[-1])
    arguments = same_pool_arguments(height, width, kernel, stride)
    if arguments is not None:
        padding_h, padding_w, ceil_mode = arguments
        return F.max_pool2d(x, kernel, stride, (padding_h, padding_w), ceil_mode=ceil_mode)
    pad_h, pad_w = same_padding(height, kernel_h, stride_h), same_padding(width, kernel_w, stride_w)
    return F.max_pool2d(F.pad(x, [*pad_w, *pad_h], value=float("-inf")), kernel, stride)


def _same_pads(length: torch.Tensor, kernel, stride):
    """SAME padding (before, after) of one axis of side `length` (a tensor; kernel and stride ints or tensors), as
    `geometry.same_padding` computes it."""
    total = torch.clamp((ceil_div(length, stride) - 1) * stride + kernel - length, min=0)
    before = total // 2
    return before, total - before


def max_pool_same_varying(x: torch.Tensor, kernels, strides, lengths=None) -> torch.Tensor:
    """TF 'SAME' max-pooling whose kernel (1, 3 or 5) and stride per axis are 0-dim int64 tensors computed from
    shapes: what `max_pool_same(x, kernels, strides)` returns, as operations whose parameters are data (an exported
    max-pool's kernel and stride are fixed). Per axis: the maxima of the stride-1 windows of each kernel centred on
    every pixel (-inf beyond the edges), the kernel's chosen, then every stride-th of them from the first SAME
    window's centre. A max over a rectangle is the max over its rows' maxima: the same windows, the same result.
    `lengths`: x's (height, width), where the caller has them."""
    for axis, (kernel, stride) in enumerate(zip(kernels, strides)):
        dim = x.dim() - 2 + axis
        window = (3, 1) if axis == 0 else (1, 3)
        padding = (1, 0) if axis == 0 else (0, 1)
        max3 = F.max_pool2d(x, window, 1, padding)
        max5 = F.max_pool2d(max3, window, 1, padding)  # a 5-window is a 3-window of 3-windows
        centred = torch.where(on(kernel == 5, x), max5, torch.where(on(kernel == 3, x), max3, x))
        length = side(x, dim) if lengths is None else lengths[axis]
        x = centred.index_select(dim, shared(f"pool {x.device}", (length, kernel, stride),
                                             lambda: _pool_index(length, kernel, stride, x.device)))
    return x


def _pool_index(length, kernel, stride, device) -> torch.Tensor:
    """The centres of the SAME windows along one axis: stride i + kernel // 2 - the padding before."""
    before, _ = _same_pads(length, kernel, stride)
    return torch.arange(ceil_div(length, stride), device=device) * stride + (kernel // 2 - before)


class MaxPoolSame(nn.Module):
    """Module form of `max_pool_same`."""

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool_same(x, self.kernel, self.stride)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, padding=SAME"


def resize_nearest(x: torch.Tensor, size, source=None) -> torch.Tensor:
    """Returns `x` resized to `size` (height, width) by nearest neighbour; `x` itself if already that size. Under
    `dynamic_shapes()` `size` may hold 0-dim tensors and the resize is made unless `source` (x's size, if given) is
    the very same object (see `gather_nearest`)."""
    if shapes_are_dynamic():
        return gather_nearest(x, size, source)
    size = (int(size[0]), int(size[1]))
    if (int(x.shape[-2]), int(x.shape[-1])) == size:
        return x
    return F.interpolate(x, size=size, mode="nearest")


def gather_nearest(x: torch.Tensor, size, source=None) -> torch.Tensor:
    """Returns `x` resized to `size` (ints or 0-dim tensors) by nearest neighbour as index gathers, with PyTorch's
    own source indices: min(floor(i * float32(in / out)), in - 1). An exported Resize would compute them as
    i / float32(out / in) (ONNX Runtime does), which differs by one pixel at some sizes (21 -> 6). `source`: x's
    (height, width) where the caller has them; `x` itself when that is `size`, the very same object (the sizes of one
    level: equal at every input size)."""
    if source is not None and source is size:
        return x
    for axis in (0, 1):
        dim = x.dim() - 2 + axis
        length = side(x, dim) if source is None else source[axis]
        length = length if isinstance(length, torch.Tensor) else torch.tensor(length)
        target = size[axis] if isinstance(size[axis], torch.Tensor) else torch.tensor(size[axis])
        x = x.index_select(dim, shared(f"nearest {x.device}", (length, target),
                                       lambda: _nearest_index(length, target, x.device)))
    return x


def _nearest_index(length: torch.Tensor, target: torch.Tensor, device) -> torch.Tensor:
    """PyTorch's nearest source indices from `length` to `target` pixels, as `gather_nearest` describes."""
    scale = length.to(torch.float32) / target.to(torch.float32)
    index = (torch.arange(target, device=device).to(torch.float32) * scale).floor().to(torch.int64)
    return torch.minimum(index, (length - 1).to(device))


def upsample_nearest(x: torch.Tensor, scale) -> torch.Tensor:
    """Returns `x` upsampled with nearest neighbour by the integer `scale` (an int, or a (height, width) pair)."""
    scale_h, scale_w = pair(scale)
    if shapes_are_dynamic():
        return gather_nearest(x, (side(x, -2) * scale_h, side(x, -1) * scale_w))
    return F.interpolate(x, size=(int(x.shape[-2]) * scale_h, int(x.shape[-1]) * scale_w), mode="nearest")
