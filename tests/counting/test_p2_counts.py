"""Counts of SpineNet-49 with the Model Garden's 16th block at min_level 2 and 3: the fast counter against fvcore
module by module, against the independent count (reference_counts.py), and the difference P2 makes against hand
formulas for the extra endpoint and the head's P2 level."""
from __future__ import annotations

import math

import pytest

from spinescope.analysis.counting import analyze
from p2_specs import model_garden_spec
from reference_counts import MODEL_GARDEN_49, spinenet_counts

ENDPOINTS, HEAD_CONVS, WIDTH, CLASSES, ANCHORS = 256, 4, 256, 91, 9


@pytest.mark.parametrize("min_level", [2, 3])
def test_fast_counter_equals_fvcore_module_by_module(min_level, one_torch_thread):
    result = analyze(model_garden_spec(min_level), 128, "retinanet", verify=True)
    assert result.verified is True, result.differences
    assert list(result.outputs) == [f"P{level}" for level in range(min_level, 8)]


@pytest.mark.parametrize("min_level", [2, 3])
@pytest.mark.parametrize("size", [200, 640])
def test_counts_equal_the_independent_count(min_level, size):
    spec = model_garden_spec(min_level)
    for head in (False, True):
        result = analyze(spec, size, "retinanet" if head else "none")
        assert (result.params, result.macs) == spinenet_counts("spinenet-49", size, head, MODEL_GARDEN_49,
                                                               min_level)[:2]


@pytest.mark.parametrize("size", [200, 640])
def test_p2_adds_one_endpoint_conv_and_one_head_level_by_hand_formula(size):
    """P2 (side ceil(S/4)) adds to min_level 3: a 1x1 endpoint conv 256 -> 256 with BN (params 256*256 + 2*256, MACs
    256*256 per pixel), the now live b17 (its MACs, params unchanged), and the head's P2 level: per-level BN in both
    subnets (2 x 4 convs x 2 x 256 params) and the shared convs and predictors run once more on P2."""
    low, high = analyze(model_garden_spec(2), size, "retinanet"), analyze(model_garden_spec(3), size, "retinanet")
    pixels = math.ceil(size / 4) ** 2
    b17 = next(block for block in low.blocks if block.id == "b17")
    dead_b17 = next(block for block in high.blocks if block.id == "b17")
    assert (dead_b17.macs, dead_b17.live, b17.live) == (0, False, True)
    assert b17.params == dead_b17.params
    assert low.backbone_params - high.backbone_params == ENDPOINTS * ENDPOINTS + 2 * ENDPOINTS
    assert low.backbone_macs - high.backbone_macs == ENDPOINTS * ENDPOINTS * pixels + b17.macs
    assert low.head_params - high.head_params == 2 * HEAD_CONVS * 2 * WIDTH
    per_pixel = sum(HEAD_CONVS * 9 * WIDTH * WIDTH + 9 * WIDTH * outputs
                    for outputs in (CLASSES * ANCHORS, 4 * ANCHORS))
    assert low.head_macs - high.head_macs == per_pixel * pixels
