"""Params and MACs of every built-in against the independent count in reference_counts.py."""
import pytest
import torch

from spinescope.analysis.counting import analyze, count_params
from reference_counts import reference_counts, resnet_fpn_counts, spinenet_counts
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin

# torchvision's weight metadata minus the 1000-class fc layer (2048 * 1000 + 1000 params).
TORCHVISION_RESNET_NO_FC = {"resnet50-fpn": 25_557_032 - 2_049_000, "resnet101-fpn": 44_549_160 - 2_049_000,
                            "resnet152-fpn": 60_192_808 - 2_049_000}


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_params_match_reference_formulas(name):
    spec = load_builtin(name)
    model = build_model(spec, "retinanet", device="meta")
    assert count_params(model) == reference_counts(name, spec.input_size, head=True)[0]
    assert count_params(model.backbone) == reference_counts(name, spec.input_size, head=False)[0]


@pytest.mark.slow  # fvcore traces a real forward pass of each built-in
@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_fvcore_counts_match_reference_formulas_at_small_inputs(name):
    spec = load_builtin(name)
    size = 160 if "190" in name or "152" in name else 200  # 200 is not a multiple of 128 (or 32)
    result = analyze(spec, size, "retinanet", counter="fvcore")
    params, macs = reference_counts(name, size, head=True)
    backbone_params, backbone_macs = reference_counts(name, size, head=False)
    assert (result.params, result.macs) == (params, macs)
    assert (result.backbone_params, result.backbone_macs) == (backbone_params, backbone_macs)
    assert (result.head_params, result.head_macs) == (params - backbone_params, macs - backbone_macs)


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_reported_counts_at_the_paper_input_size_match_reference_formulas(name):
    spec = load_builtin(name)
    result = analyze(spec, spec.input_size, "retinanet")  # the fast counter, equal to fvcore (test_fast_count.py)
    assert (result.params, result.macs) == reference_counts(name, spec.input_size, head=True)


def test_parts_and_blocks_add_up_to_the_total():
    result = analyze(load_builtin("spinenet-49"), 256, "retinanet")
    assert sum(part["params"] for part in result.parts.values()) == result.params
    assert sum(part["macs"] for part in result.parts.values()) == result.macs
    stem_conv_and_endpoints = result.parts["stem"]["macs"] + result.parts["endpoints"]["macs"] - sum(
        b.macs for b in result.blocks if b.role == "stem")
    assert sum(b.macs for b in result.blocks) + stem_conv_and_endpoints + result.head_macs == result.macs
    assert [b.id for b in result.blocks] == ["stem0", "stem1"] + [f"b{i}" for i in range(2, 17)]
    assert result.flops == 2 * result.macs
    assert result.other_ops["batch_norm"] > 0 and result.other_ops["upsample_nearest2d"] > 0
    assert result.uncounted_ops["aten::max_pool2d"] == 10  # one stem pool + nine resampling pools at 256


def test_resnet_trunk_matches_torchvision_constants():
    for name, expected in TORCHVISION_RESNET_NO_FC.items():
        assert resnet_fpn_counts(name, 224, head=False)[2] == expected
        backbone = build_model(load_builtin(name), device="meta").backbone
        trunk = sum(count_params(m) for key, m in backbone.blocks.items() if not key.startswith("P"))
        assert trunk == expected


def test_spinenet49_has_exactly_one_outdegree_merge():
    assert spinenet_counts("spinenet-49", 640, head=False)[2] == 1


def test_hand_derived_bottleneck_cost():
    """SpineNet-49's block b2 (level 2 bottleneck, C=64) fed by stem0/stem1 (256 channels each) at 640 px."""
    s = 160  # level-2 side at 640
    reduce = 256 * 32 + 2 * 32  # 1x1 256 -> int(64 * 0.5) = 32, BN
    project = 32 * 256 + 2 * 256  # 1x1 32 -> 4C = 256, BN
    bottleneck = (256 * 64 + 128) + (9 * 64 * 64 + 128) + (64 * 256 + 512)  # identity shortcut (256 in, 256 out)
    expected_params = 2 * (reduce + project) + bottleneck
    expected_macs = s * s * (2 * (256 * 32 + 32 * 256) + 256 * 64 + 9 * 64 * 64 + 64 * 256)
    block = build_model(load_builtin("spinenet-49"), device="meta").backbone.blocks["b2"]
    assert count_params(block) == expected_params
    result = analyze(load_builtin("spinenet-49"), 640)
    assert next(b for b in result.blocks if b.id == "b2").macs == expected_macs


def test_bn_running_statistics_are_not_params():
    model = build_model(load_builtin("spinenet-49s"), device="meta")
    buffers = sum(b.numel() for name, b in model.named_buffers() if "running" in name)
    assert buffers > 0
    assert count_params(model) == sum(p.numel() for p in model.parameters())
    assert all(isinstance(p, torch.nn.Parameter) for p in model.parameters())
