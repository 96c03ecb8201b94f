"""Output shapes at sizes that are and are not multiples of 128, on meta (all built-ins) and on the CPU."""
import pytest
import torch

from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin

from forward_checks import check_real_forward, expected_shapes

SIZES = (640, 512, 600, 224)


@pytest.mark.parametrize("name", BUILTIN_NAMES)
@pytest.mark.parametrize("size", SIZES)
def test_output_shapes_on_meta(name, size):
    spec = load_builtin(name)
    model = build_model(spec, "retinanet", size, device="meta")
    features = model.backbone(torch.empty(1, 3, size, size, device="meta"))
    assert {k: tuple(v.shape) for k, v in features.items()} == expected_shapes(spec, size)
    outputs = model.head(features)
    for level, (logits, boxes) in outputs.items():
        assert logits.shape[1] == 91 * 9 and boxes.shape[1] == 4 * 9
        assert logits.shape[2:] == features[level].shape[2:]


@pytest.mark.parametrize("name", ["spinenet-49s", "spinenet-mobile-49", "resnet50-fpn"])
@pytest.mark.parametrize("size", [224, 600])
def test_real_forward_on_cpu(name, size):
    check_real_forward(load_builtin(name), size)


@pytest.mark.parametrize("pooling, in_features", [("gap", 256), ("spp", 256 * 21)])
def test_classification_head(pooling, in_features):
    model = build_model(load_builtin("spinenet-49"), "classification", 224, device="meta", pooling=pooling)
    assert model.head.fc.in_features == in_features
    assert tuple(model(torch.empty(2, 3, 224, 224, device="meta")).shape) == (2, 1000)


def test_modules_are_named_by_block_id_and_built_on_meta():
    spec = load_builtin("spinenet-190")
    model = build_model(spec, "retinanet", device="meta")
    assert set(model.backbone.blocks.keys()) == {"stem0", "stem1", *spec.block_ids}
    assert all(p.device.type == "meta" for p in model.parameters())
    bn = model.backbone.blocks["b2"].group[0].conv1[1]
    assert (bn.momentum, bn.eps) == (0.01, 1e-3)
    assert model.training is False


def test_swish_activation_is_used_everywhere_when_asked():
    model = build_model(load_builtin("spinenet-mobile-49"), device="meta")
    kinds = {type(m).__name__ for m in model.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.SiLU))}
    assert kinds == {"SiLU", "ReLU"}  # SiLU everywhere; ReLU only inside squeeze-excite
    se_relus = sum(isinstance(m, torch.nn.ReLU) for name, m in model.named_modules() if ".se." in name)
    assert se_relus == sum(isinstance(m, torch.nn.ReLU) for m in model.modules())
