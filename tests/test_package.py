"""The Python API: a backbone's outputs described like timm's feature_info / detectron2's ShapeSpec; an edited spec
trains (the loss goes down). The installed wheel is tested in tests/package/test_wheel.py."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import spinescope
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import set_block_fn, set_scaling
from spinescope.spinenet.validate import SpecError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["spinenet-49", "spinenet-mobile-49xs", "resnet50-fpn"])
def test_backbone_outputs_are_described_like_feature_info_and_shapespec(name):
    spec = load_builtin(name)
    backbone = spinescope.create_backbone(name, 96)
    width = spec.scaling.endpoints_num_filters
    assert backbone.feature_info.channels() == [width] * 5 and backbone.out_channels == width
    assert backbone.feature_info.reduction() == [8, 16, 32, 64, 128]
    modules = dict(backbone.named_modules())
    assert all(module in modules for module in backbone.feature_info.module_name())
    shapes = backbone.output_shape()
    assert list(shapes) == ["P3", "P4", "P5", "P6", "P7"]
    with torch.no_grad():
        features = backbone(torch.zeros(1, 3, 96, 96))
    for level, tensor in features.items():
        shape = shapes[level]
        assert tensor.shape == (1, shape.channels, shape.height, shape.width)
        assert shape.stride == 2 ** int(level[1:]) and shape.height == -(-96 // shape.stride)


def test_load_spec_takes_a_name_a_file_or_a_spec_and_refuses_others_in_one_line():
    assert spinescope.load_spec("SpineNet-49S") == load_builtin("spinenet-49s")
    assert spinescope.load_spec(ROOT / "assets" / "specs" / "spinenet-49.yaml") == load_builtin("spinenet-49")
    with pytest.raises(SpecError) as error:
        spinescope.load_spec("no-such-\x1bmodel")
    assert "\n" not in str(error.value) and "\x1b" not in str(error.value)


def test_an_edited_spec_trains_and_its_loss_goes_down():
    """SpineNet-49S made smaller and with one block type changed, classification head, 12 Adam steps on one fixed
    random batch: the model fits it, so the loss falls."""
    spec = set_scaling(load_builtin("spinenet-49s"), filter_size_scale=0.25, endpoints_num_filters=32)
    spec = set_block_fn(spec, "b3", "bottleneck")
    torch.manual_seed(0)
    model = spinescope.create_model(spec, "classification", 64, num_classes=4).train()
    images = torch.randn(8, 3, 64, 64)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(map(torch.isfinite, map(torch.tensor, losses)))
    assert losses[-1] < 0.5 * losses[0], losses
