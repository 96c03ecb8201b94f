"""Small torch pieces the described modules use: conv-BN-activation, TF-style SAME max-pooling, nearest resizing."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spinescope.spinenet.structure import pair, same_padding, same_pool_arguments


class ConvBnAct(nn.Sequential):
    """conv (no bias) -> BN -> optional activation, as the structure's `conv_bn_act` describes it. A class of its
    own so that batch-norm folding (`analysis.latency`) finds exactly these conv -> BN pairs."""


def max_pool_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    """Max-pool with TF 'SAME' padding: output side ceil(side / stride), extra padding at the end; `kernel` and
    `stride` are ints or (height, width) pairs. Where PyTorch's max_pool2d can do it with its own padding (and
    ceil_mode for one extra pixel at the end) it does, without a padded copy; otherwise the input is padded with
    -inf first. Both give the same windows: the same result."""
    height, width = int(x.shape[-2]), int(x.shape[-1])
    arguments = same_pool_arguments(height, width, kernel, stride)
    if arguments is not None:
        padding_h, padding_w, ceil_mode = arguments
        return F.max_pool2d(x, kernel, stride, (padding_h, padding_w), ceil_mode=ceil_mode)
    (kernel_h, kernel_w), (stride_h, stride_w) = pair(kernel), pair(stride)
    pad_h, pad_w = same_padding(height, kernel_h, stride_h), same_padding(width, kernel_w, stride_w)
    return F.max_pool2d(F.pad(x, [*pad_w, *pad_h], value=float("-inf")), kernel, stride)


class MaxPoolSame(nn.Module):
    """Module form of `max_pool_same`."""

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool_same(x, self.kernel, self.stride)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, padding=SAME"


def resize_nearest(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Returns `x` resized to `size` (height, width) by nearest neighbour; `x` itself if already that size."""
    size = (int(size[0]), int(size[1]))
    if (int(x.shape[-2]), int(x.shape[-1])) == size:
        return x
    return F.interpolate(x, size=size, mode="nearest")


def upsample_nearest(x: torch.Tensor, scale) -> torch.Tensor:
    """Returns `x` upsampled with nearest neighbour by the integer `scale` (an int, or a (height, width) pair)."""
    scale_h, scale_w = pair(scale)
    return F.interpolate(x, size=(int(x.shape[-2]) * scale_h, int(x.shape[-1]) * scale_w), mode="nearest")
