"""Batch norm folded into convolutions gives the same outputs (float64, random BN statistics)."""
import pytest
import torch
from torch import nn

from spinescope.analysis.latency.bn_fold import count_batch_norms, fold_batch_norms, fold_conv_bn
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.layers import ConvBnAct


def _randomize_batch_norms(model: nn.Module, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)


def _flatten(outputs):
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        return [t for key in sorted(outputs) for t in _flatten(outputs[key])]
    return [t for item in outputs for t in _flatten(item)]


def test_fold_single_pair_matches_conv_then_bn():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=True).double()
    bn = nn.BatchNorm2d(6, eps=1e-3).double().eval()
    _randomize_batch_norms(bn)
    x = torch.randn(2, 4, 9, 9, dtype=torch.float64)
    expected = bn(conv(x))
    fold_conv_bn(conv, bn)
    torch.testing.assert_close(conv(x), expected, rtol=1e-12, atol=1e-12)


SIZE = 40  # small (float64 convolutions are slow) and not a power of two

# (built-in, head, BNs that must stay: FPN per-level BNs (5) and RetinaNet per-level BNs (2 x 5 x num_convs))
CASES = [
    ("spinenet-mobile-49xs", "none", 0),
    ("resnet50-fpn", "none", 5),
    ("spinenet-49s", "retinanet", 2 * 5 * 4),
]


@pytest.mark.parametrize("name,head,remaining", CASES)
def test_folded_model_matches_original(name, head, remaining):
    torch.manual_seed(0)
    model = build_model(load_builtin(name), head, SIZE).double()
    _randomize_batch_norms(model)
    pairs = sum(isinstance(m, ConvBnAct) for m in model.modules())
    images = torch.randn(1, 3, SIZE, SIZE, dtype=torch.float64)
    with torch.inference_mode():
        expected = _flatten(model(images))
        folded = fold_batch_norms(model)
        actual = _flatten(model(images))
    assert folded == pairs > 0
    assert count_batch_norms(model) == remaining
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-9 * float(e.abs().max()))


def test_fold_refuses_training_mode():
    model = build_model(load_builtin("spinenet-mobile-49xs"), "none", 64).train()
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(model)
