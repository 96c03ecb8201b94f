"""Shapes and the arithmetic of windows: output sides of convolutions and TF 'SAME' pooling, SAME padding, and
the arguments with which PyTorch's own max_pool2d is SAME pooling. Pure functions of ints, no torch."""
from __future__ import annotations

Shape = tuple[int, int, int]  # channels, height, width (pixels)


def conv_output_side(side: int, kernel: int, stride: int, padding: int) -> int:
    """Returns the output side (pixels) of a convolution over `side` pixels."""
    return (side + 2 * padding - kernel) // stride + 1


def same_output_side(side: int, stride: int) -> int:
    """Returns TF 'SAME' pooling's output side: ceil(side / stride) pixels."""
    return -(-side // stride)


def same_padding(side: int, kernel: int, stride: int) -> tuple[int, int]:
    """Returns TF 'SAME' padding (before, after) in pixels for one axis; the extra pixel goes after."""
    total = max((same_output_side(side, stride) - 1) * stride + kernel - side, 0)
    return total // 2, total - total // 2


def pytorch_pool_side(side: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """Returns the output side of PyTorch's max_pool2d (its pooling_output_shape, dilation 1) in pixels."""
    out = (side + 2 * padding - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= side + padding:
        out -= 1
    return out


def pair(value) -> tuple[int, int]:
    """Returns a kernel, stride or scale as (height, width): an int means the same on both axes."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))



def same_pool_arguments(height: int, width: int, kernel, stride) -> tuple[int, int, bool] | None:
    """Returns (padding_h, padding_w, ceil_mode) with which PyTorch's own max_pool2d is TF 'SAME' max-pooling
    (same windows, so the same result bit for bit, without padding a copy), or None where it cannot be (then pad
    with -inf first). Symmetric SAME padding is max_pool2d's padding; one extra pixel at the end of an axis is
    ceil_mode, whose last window PyTorch clips to the input, which is what -inf padding does to a max.
    `kernel` and `stride` are ints or (height, width) pairs."""
    axes = list(zip((height, width), pair(kernel), pair(stride)))
    padding, ceil_mode = [], False
    for side, k, s in axes:
        before, after = same_padding(side, k, s)
        if before > k // 2 or after - before > 1:
            return None
        padding.append(before)
        ceil_mode = ceil_mode or after != before
    for (side, k, s), before in zip(axes, padding):
        if pytorch_pool_side(side, k, s, before, ceil_mode) != same_output_side(side, s):
            return None
    return padding[0], padding[1], ceil_mode
