"""The forward pass with in-place activations and residual adds and SAME max-pooling without a padded copy gives
the same outputs, bit for bit, as the forward written before (out-of-place ops, -inf padding; kept here as the
reference), in eval, and the same loss and gradients in training (autograd accepts the in-place ops)."""
import pytest
import torch
import torch.nn.functional as F

import spinescope.spinenet.layers
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.modules import module_class
from spinescope.spinenet.structure import same_output_side, same_pool_arguments


# -- the functions as they were before the change (the reference) -------------------------------------------------
def old_max_pool_same(x, kernel, stride):
    pads = []
    for side in (int(x.shape[-1]), int(x.shape[-2])):
        out = -(-side // stride)
        total = max((out - 1) * stride + kernel - side, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), kernel, stride)


def old_bottleneck_forward(self, x):
    return self.act(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


def old_residual_forward(self, x):
    return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


def old_mbconv_forward(self, x):
    y = self.expand(x) if hasattr(self, "expand") else x
    y = self.depthwise(y)
    if hasattr(self, "se"):
        y = self.se(y)
    y = self.project(y)
    return x + y if self.residual else y


def old_permuted_block_forward(self, parents, merged, size):
    total = self.resample[0](parents[0], size) + self.resample[1](parents[1], size)
    for feature in merged:
        total = total + feature
    return self.group(self.act(total))


def old_resnet_fpn_forward(self, images):
    from spinescope.spinenet.layers import resize_nearest

    x = self.blocks["stem"](images)
    stage_outputs = {}
    for level, ids in self.stage_ids.items():
        for block_id in ids:
            x = self.blocks[block_id](x)
        stage_outputs[level] = x
    merged = {5: self.blocks["P5"].lateral(stage_outputs[5])}
    for level in (4, 3):
        lateral = self.blocks[f"P{level}"].lateral(stage_outputs[level])
        merged[level] = resize_nearest(merged[level + 1], lateral.shape[-2:]) + lateral
    pre_bn = {level: self.blocks[f"P{level}"].conv(merged[level]) for level in (3, 4, 5)}
    pre_bn[6] = self.blocks["P6"].conv(pre_bn[5])
    pre_bn[7] = self.blocks["P7"].conv(pre_bn[6].relu())
    return {f"P{level}": self.blocks[f"P{level}"].bn(pre_bn[level]) for level in range(3, 8)}


def use_old_forward(model, monkeypatch):
    """Makes `model` run the old functions: out-of-place activations and adds (residual, fusion and FPN top-down),
    SAME pooling through -inf padding."""
    monkeypatch.setattr(spinescope.spinenet.layers, "max_pool_same", old_max_pool_same)
    for kind, forward in (("bottleneck", old_bottleneck_forward), ("residual", old_residual_forward),
                          ("mbconv", old_mbconv_forward), ("permuted_block", old_permuted_block_forward),
                          ("resnet_fpn", old_resnet_fpn_forward)):
        monkeypatch.setattr(module_class(kind), "forward", forward)
    for module in model.modules():
        if isinstance(module, (torch.nn.ReLU, torch.nn.SiLU)):
            monkeypatch.setattr(module, "inplace", False)


def randomise(model):
    """Random weights and BN statistics, so that no BN is an identity and no add or max is trivial."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if tensor.is_floating_point():
                values = torch.randn(tensor.shape, generator=generator) * 0.2
                tensor.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)


def flat(output):
    """Every tensor of a model's output (a tensor, a dict of tensors or of tensor pairs), in a fixed order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        return [t for key in output for t in flat(output[key])]
    return [t for item in output for t in flat(item)]


CASES = [("spinenet-49s", "retinanet"), ("spinenet-49s", "classification"), ("spinenet-mobile-49xs", "retinanet"),
         ("resnet50-fpn", "none")]


@pytest.mark.parametrize("name,head", CASES)
@pytest.mark.parametrize("size", [97, 128])  # level-1 side 49 (symmetric SAME padding) and 64 (one extra pixel)
def test_eval_outputs_are_bit_identical_to_the_old_forward(name, head, size, monkeypatch):
    torch.manual_seed(0)
    model = build_model(load_builtin(name), head, size)
    randomise(model)
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        new = flat(model(images))
        use_old_forward(model, monkeypatch)
        old = flat(model(images))
    assert len(new) == len(old) > 0
    for a, b in zip(new, old):
        assert a.shape == b.shape and torch.equal(a, b)


@pytest.mark.parametrize("name", ["spinenet-49s", "spinenet-mobile-49xs", "resnet50-fpn"])
def test_training_loss_and_gradients_equal_the_old_forward(name, monkeypatch):
    """Autograd through the in-place ops: no error, and the same loss and gradients as the out-of-place forward."""
    torch.manual_seed(0)
    model = build_model(load_builtin(name), "classification", 64, num_classes=10).train()
    randomise(model)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([3, 7])

    def loss_and_grads():
        model.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    state = {k: v.clone() for k, v in model.state_dict().items()}  # BN running stats move in training
    new_loss, new_grads = loss_and_grads()
    model.load_state_dict(state)
    use_old_forward(model, monkeypatch)
    old_loss, old_grads = loss_and_grads()
    assert torch.equal(new_loss, old_loss)
    for a, b in zip(new_grads, old_grads):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kernel,stride", [(3, 2), (5, 2), (3, 4), (5, 4), (5, 8), (3, 1), (2, 1), (2, 2)])
def test_max_pool_same_is_the_old_padded_pool(kernel, stride):
    """Every side 1..40 and non-square maps: same output, bit for bit; the output side is ceil(side / stride)."""
    generator = torch.Generator().manual_seed(0)
    for height in range(1, 41):
        for width in (height, height + 1, max(1, height - 3)):
            x = torch.randn(1, 2, height, width, generator=generator)
            new = spinescope.spinenet.layers.max_pool_same(x, kernel, stride)
            assert new.shape[-2:] == (same_output_side(height, stride), same_output_side(width, stride))
            assert torch.equal(new, old_max_pool_same(x, kernel, stride)), (height, width)


def test_same_pooling_needs_no_padded_copy_for_the_pools_the_models_use():
    """Kernels 3 and 5 at strides 2..32 (the stem's 3x3/2 and the resampling's pools) never pad a copy; only a
    stride-1 even kernel does (asymmetric padding that ceil_mode cannot express)."""
    for kernel in (3, 5):
        for stride in (2, 4, 8, 16, 32):
            for side in range(1, 300):
                assert same_pool_arguments(side, side, kernel, stride) is not None, (side, kernel, stride)
    assert same_pool_arguments(10, 10, 2, 1) is None
    assert same_pool_arguments(49, 49, 3, 2) == (1, 1, False)  # 49 -> 25: one pixel each side
    assert same_pool_arguments(64, 64, 3, 2) == (0, 0, True)  # 64 -> 32: one pixel after only
