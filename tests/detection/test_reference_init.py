"""The weights `build_model` starts from are drawn as the authors' TensorFlow code draws them, checked against
hand formulas: conv kernels from TF's variance scaling (scale 1, fan-in, normal truncated at 2 std, so their std
is sqrt(1 / fan_in)), the last BN of every bottleneck and residual block with scale 0 and every other BN with
scale 1, the RetinaNet head's N(0, 0.01) and N(0, 1e-5) kernels and its class prior -log(99), glorot uniform where
Keras's default applies."""
import math

import pytest
import torch
from torch import nn

from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.init import TRUNCATED_NORMAL_STD, initialize, variance_scaling_std
from spinescope.spinenet.structure import Layer

# The std of a unit normal truncated to [-2, 2], from its density phi and cdf: 1 - 2 * 2 phi(2) / (2 Phi(2) - 1).
UNIT_TRUNCATED_STD = math.sqrt(1 - 4 * math.exp(-2) / math.sqrt(2 * math.pi) / math.erf(2 / math.sqrt(2)))
LOG_99 = math.log(99)


@pytest.fixture(scope="module")
def spinenet49():
    torch.manual_seed(0)
    return build_model(load_builtin("spinenet-49"), "retinanet", 128)


def dense_convs(model, minimum=100_000):
    """Yields (name, conv, fan_in) for the ungrouped convs with at least `minimum` weights."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.groups == 1 and module.weight.numel() >= minimum:
            yield name, module, module.in_channels * module.kernel_size[0] * module.kernel_size[1]


def test_truncated_normal_constant():
    assert UNIT_TRUNCATED_STD == pytest.approx(TRUNCATED_NORMAL_STD, rel=1e-12)
    assert variance_scaling_std(2304) == pytest.approx(1 / 48 / UNIT_TRUNCATED_STD, rel=1e-12)


def test_backbone_convs_have_std_sqrt_one_over_fan_in(spinenet49):
    convs = list(dense_convs(spinenet49.backbone))
    assert len(convs) > 20
    for name, conv, fan_in in convs:
        weight = conv.weight.detach()
        std = math.sqrt(1 / fan_in)
        assert weight.std().item() == pytest.approx(std, rel=0.03), name
        assert weight.mean().abs().item() < 0.02 * std, name
        # Truncated at 2 std of the normal drawn from (std / 0.8796), and reaching close to it.
        bound = 2 * std / UNIT_TRUNCATED_STD
        assert bound * 0.98 < weight.abs().max().item() <= bound * (1 + 1e-6), name


def zero_and_one_norms(model):
    """Returns (names of BNs with all scales 0, names of BNs with all scales 1); fails on any other BN."""
    zeros, ones = [], []
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            if torch.all(module.weight == 0):
                zeros.append(name)
            else:
                assert torch.all(module.weight == 1), name
                ones.append(name)
            assert torch.all(module.bias == 0), name
    return zeros, ones


# (bottleneck blocks, residual blocks): SpineNet-49's two stem bottlenecks and its 15 blocks, 4 of them residual
# (assets/specs/spinenet-49.yaml), once each; SpineNet-96 repeats each twice; ResNet-50 has 3 + 4 + 6 + 3 bottlenecks.
@pytest.mark.parametrize("name, head, bottlenecks, residuals", [
    ("spinenet-49", "none", 13, 4),
    ("spinenet-49s", "retinanet", 13, 4),
    ("spinenet-96", "none", 26, 8),
    ("resnet50-fpn", "none", 16, 0),
])
def test_last_bn_of_each_block_starts_at_zero(name, head, bottlenecks, residuals):
    model = build_model(load_builtin(name), head, 64)
    zeros, ones = zero_and_one_norms(model)
    # the last BN of the main path: conv3's in a bottleneck, conv2's in a residual block
    assert len([n for n in zeros if n.endswith(".conv3.1")]) == bottlenecks
    assert len([n for n in zeros if n.endswith(".conv2.1")]) == residuals
    assert len(zeros) == bottlenecks + residuals
    for norm in zeros:
        block_name = norm.rsplit(".", 2)[0]
        block = model.get_submodule(block_name)
        assert norm.endswith({"Bottleneck": ".conv3.1", "Residual": ".conv2.1"}[type(block).__name__])
        assert f"{block_name}.conv1.1" in ones
        if not isinstance(block.shortcut, nn.Identity):  # a projection shortcut's BN keeps scale 1
            assert f"{block_name}.shortcut.1" in ones
    projections = [n for n in ones if ".resample." in n or ".endpoints." in n]
    assert projections or name.startswith("resnet")


def test_mbconv_blocks_keep_every_scale_at_one():
    model = build_model(load_builtin("spinenet-mobile-49"), "none", 64)
    zeros, ones = zero_and_one_norms(model)
    assert zeros == [] and len(ones) > 50


def test_depthwise_convs_are_glorot_uniform():
    # Keras's default for the authors' depthwise conv: U(-a, a), a = sqrt(6 / (fan_in + fan_out)); for a 3x3
    # depthwise kernel of C channels the fans are 9 and 9 C (either way round), so std = a / sqrt(3).
    model = build_model(load_builtin("spinenet-mobile-49"), "none", 64)
    by_channels = {}
    for name, module in model.named_modules():
        if name.endswith(".depthwise.0"):
            assert module.groups == module.in_channels == module.out_channels
            by_channels.setdefault(module.in_channels, []).append(module.weight.detach().flatten())
    assert len(by_channels) >= 2
    for channels, weights in by_channels.items():
        weight = torch.cat(weights)
        bound = math.sqrt(6 / (9 + 9 * channels))
        assert weight.abs().max().item() <= bound
        if weight.numel() >= 5000:
            assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05), channels


def test_retinanet_head_as_the_authors(spinenet49):
    head = spinenet49.head
    predict, box = head.class_net.predict, head.box_net.predict
    assert torch.allclose(predict.bias, torch.full_like(predict.bias, -LOG_99))
    assert torch.sigmoid(predict.bias).mean().item() == pytest.approx(0.01, rel=1e-5)
    assert torch.all(box.bias == 0)
    for conv in (predict, box):
        assert conv.weight.std().item() == pytest.approx(1e-5, rel=0.05)
    for conv in [*head.class_net.convs, *head.box_net.convs]:
        assert conv.weight.std().item() == pytest.approx(0.01, rel=0.03)
        assert torch.all(conv.bias == 0)


def test_separable_head_is_glorot_with_the_prior():
    model = build_model(load_builtin("spinenet-mobile-49s"), "retinanet", 64)
    predict = model.head.class_net.predict
    pointwise = predict[1]
    assert torch.allclose(pointwise.bias, torch.full_like(pointwise.bias, -LOG_99))
    assert torch.all(model.head.box_net.predict[1].bias == 0)
    fan_in, fan_out = pointwise.in_channels, pointwise.out_channels
    assert pointwise.weight.abs().max().item() <= math.sqrt(6 / (fan_in + fan_out))
    assert predict[0].weight.abs().max().item() <= math.sqrt(6 / (9 + 9 * predict[0].in_channels))


def test_classifier_is_glorot_uniform_with_zero_bias():
    model = build_model(load_builtin("spinenet-49s"), "classification", 64, num_classes=1000)
    fc = model.head.fc
    bound = math.sqrt(6 / (fc.in_features + fc.out_features))
    assert fc.weight.abs().max().item() <= bound
    assert fc.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert torch.all(fc.bias == 0)


def test_every_tensor_is_set_and_bn_as_model_garden():
    model = build_model(load_builtin("spinenet-mobile-49s"), "retinanet", 64)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms
    for norm in norms:
        assert norm.momentum == pytest.approx(0.01) and norm.eps == pytest.approx(1e-3)
        assert torch.all(norm.running_mean == 0) and torch.all(norm.running_var == 1)
        assert int(norm.num_batches_tracked) == 0
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        assert torch.isfinite(tensor).all(), name
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.bias is not None and module.out_channels > 1:
            assert module.bias.unique().numel() == 1  # 0 or the class prior, never a random draw


def test_same_seed_same_weights_and_meta_still_empty():
    spec = load_builtin("spinenet-49s")
    torch.manual_seed(3)
    first = build_model(spec, "retinanet", 64).state_dict()
    torch.manual_seed(3)
    second = build_model(spec, "retinanet", 64).state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    meta = build_model(spec, "retinanet", 64, device="meta")
    assert all(p.is_meta for p in meta.parameters())


def test_a_module_without_initializer_is_an_error():
    with pytest.raises(ValueError, match="no initializer"):
        initialize(Layer("", "odd_kind"), nn.Linear(2, 2))
