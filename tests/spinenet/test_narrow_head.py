"""A RetinaNet head narrower than the endpoints that feed it: `head.width` is the subnets' width and the first conv
goes from the endpoint width to it. The 49S variant that fits the published figures (256 endpoints, 4 x 128 head)
is counted against a hand formula, the fast counter against fvcore's trace, the module against the description."""
import math
from dataclasses import replace

import pytest
import torch

from spinescope.analysis.counting import analyze, count_with_fvcore
from spinescope.analysis.counting.fast import count_differences, count_model
from spinescope.analysis.comparison.report import paper_table
from reference_counts import spinenet_counts
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.formats import load_spec_file
from spinescope.spinenet.spec import spec_from_dict, spec_to_dict
from spinescope.spinenet.validate import find_problems

from pathlib import Path

VARIANT = Path(__file__).resolve().parents[2] / "assets" / "variants" / "spinenet-49s-256-128.yaml"
ANCHORS, CLASSES = 9, 91


def head_by_hand(size: int, endpoints: int, width: int, convs: int) -> tuple[int, int]:
    """(params, MACs) of a RetinaNet head with `convs` 3x3 convs (bias, BN per level P3-P7), the first
    endpoints -> width, then a 3x3 predictor per subnet (91 x 9 classes, 4 x 9 boxes); MACs per output pixel."""
    pixels = sum(math.ceil(size / 2 ** level) ** 2 for level in range(3, 8))
    params = macs = 0
    for outputs in (CLASSES * ANCHORS, 4 * ANCHORS):
        widths = [endpoints] + [width] * convs
        weights = [9 * cin * width for cin in widths[:-1]] + [9 * widths[-1] * outputs]
        params += sum(weights) + convs * width + outputs + 5 * convs * 2 * width  # + biases + per-level BNs
        macs += sum(weights) * pixels
    return params, macs


def endpoints_by_hand(size: int, endpoints: int) -> tuple[int, int]:
    """(params, MACs) of 49S's endpoint 1x1 convs + BN: output blocks are bottlenecks of 4 x int(C x 0.65)
    channels (C = 128 at P3, 256 at P4-P7)."""
    params = macs = 0
    for level in range(3, 8):
        channels = 4 * int((128 if level == 3 else 256) * 0.65)
        params += channels * endpoints + 2 * endpoints
        macs += channels * endpoints * math.ceil(size / 2 ** level) ** 2
    return params, macs


def variant_by_hand(size: int) -> tuple[int, int]:
    """49S's backbone from the independent reference count, its 128 endpoints swapped for 256, plus a 256 -> 4 x 128
    head."""
    params, macs, _ = spinenet_counts("spinenet-49s", size, head=False)
    old, new = endpoints_by_hand(size, 128), endpoints_by_hand(size, 256)
    head = head_by_hand(size, 256, 128, 4)
    return params - old[0] + new[0] + head[0], macs - old[1] + new[1] + head[1]


def test_the_49s_variant_measures_the_hand_formula_at_640():
    spec = load_spec_file(VARIANT)
    assert (spec.scaling.endpoints_num_filters, spec.head.width, spec.head.num_convs) == (256, 128, 4)
    result = analyze(spec, 640, "retinanet")
    assert (result.params, result.macs) == variant_by_hand(640)
    # The figures of the reference page (section 9): 11.94M params and 33.75B MACs.
    assert round(result.params / 1e6, 2) == 11.94 and round(result.macs / 1e9, 2) == 33.75


def test_hand_head_formula_is_the_builtin_head_when_widths_are_equal():
    """The same formula, width = endpoints, gives the built-in 49S's head (reference count with - without head)."""
    with_head, without = spinenet_counts("spinenet-49s", 640, True), spinenet_counts("spinenet-49s", 640, False)
    assert head_by_hand(640, 128, 128, 4) == (with_head[0] - without[0], with_head[1] - without[1])


@pytest.mark.parametrize("spec_name,width,convs,size", [
    ("variant", 128, 4, 96), ("variant", 32, 0, 96),  # no convs: the predictors read the endpoints
    ("spinenet-mobile-49xs", 16, 2, 64),  # separable: depthwise on the 24 endpoint channels, 1x1 24 -> 16
    ("resnet50-fpn", 64, 1, 64)])
def test_narrow_head_counts_equal_fvcore_and_the_module_is_the_description(spec_name, width, convs, size):
    spec = load_spec_file(VARIANT) if spec_name == "variant" else load_builtin(spec_name)
    spec = replace(spec, head=replace(spec.head, width=width, num_convs=convs))
    assert find_problems(spec_to_dict(spec)) == []
    assert count_differences(count_model(spec, size, "retinanet"), count_with_fvcore(spec, size, "retinanet")) == []
    model = build_model(spec, "retinanet", size)
    with torch.no_grad():
        outputs = model(torch.zeros(1, 3, size, size))
    for level, (classes, boxes) in outputs.items():
        side = math.ceil(size / 2 ** int(level[1]))
        assert classes.shape == (1, spec.head.num_classes * spec.head.num_anchors, side, side)
        assert boxes.shape == (1, 4 * spec.head.num_anchors, side, side)
    endpoints = spec.scaling.endpoints_num_filters
    net = model.head.class_net
    if convs:
        first = net.convs[0] if isinstance(net.convs[0], torch.nn.Conv2d) else net.convs[0][1]  # (pointwise)
        assert (first.in_channels, first.out_channels) == (endpoints, width)
    predict = net.predict if isinstance(net.predict, torch.nn.Conv2d) else net.predict[0]
    assert predict.in_channels == (width if convs else endpoints)


def test_builtins_keep_a_head_as_wide_as_their_endpoints():
    for name in BUILTIN_NAMES:
        spec = load_builtin(name)
        assert spec.head.width == spec.scaling.endpoints_num_filters, name


def test_a_file_without_head_width_gets_the_endpoint_width():
    data = spec_to_dict(load_builtin("spinenet-49s"))
    del data["head"]["width"]
    assert find_problems(data) == []
    assert spec_from_dict(data).head.width == 128
    data["head"]["width"] = 64
    assert find_problems(data) == [] and spec_from_dict(data).head.width == 64


def test_paper_table_shows_the_variant_beside_the_published_49s():
    table = paper_table()
    row = next(line for line in table.splitlines() if "4 x 128 head" in line)
    params, macs = variant_by_hand(640)
    assert row.startswith("| SpineNet-49S variant (256 endpoints, 4 x 128 head) | 640 |")
    assert f"| {params / 1e6:.2f}M | 12.0M |" in row and f"| {macs / 1e9:.2f}B | 33.8B |" in row
