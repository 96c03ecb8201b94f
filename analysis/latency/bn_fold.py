"""Batch norm folded into the preceding convolution, for inference-time latency.

In eval mode BN is an affine map per channel, y = (x - mean) / sqrt(var + eps) * gamma + beta, so it can be
merged into the conv before it: W' = W * s and b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps).
Only the conv -> BN pairs inside `ConvBnAct` are folded. The FPN's per-level BNs (P5's and P6's pre-BN maps
also feed P6 and P7) and the RetinaNet head's per-level BNs (after convs shared across levels) cannot be folded
without changing the model, so they stay.
"""
from __future__ import annotations

import torch
from torch import nn

from spinescope.spinenet.layers import ConvBnAct


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Merges `bn`'s running statistics and affine parameters into `conv`'s weight and bias, in place."""
    scale = bn.running_var.add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    if conv.bias is not None:
        shift = shift + conv.bias * scale
    conv.weight.mul_(scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype))
    conv.bias = nn.Parameter(shift.to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)


def fold_batch_norms(model: nn.Module) -> int:
    """Folds every conv -> BN pair of the model's `ConvBnAct` modules in place (the BN becomes an Identity).

    Valid only for inference (BN's running statistics are used); raises ValueError on a model in training mode.
    Returns the number of BN layers folded.
    """
    if model.training:
        raise ValueError("batch norm can only be folded in eval mode")
    folded = 0
    for module in model.modules():
        if isinstance(module, ConvBnAct) and isinstance(module[1], nn.BatchNorm2d):
            fold_conv_bn(module[0], module[1])
            module[1] = nn.Identity()
            folded += 1
    return folded


def count_batch_norms(model: nn.Module) -> int:
    """Returns the number of BatchNorm2d layers left in `model`."""
    return sum(isinstance(module, nn.BatchNorm2d) for module in model.modules())
