"""Spatial pyramid pooling as SPPNet defines it (max-pooled n x n bins per pyramid level, concatenated): the
classifier's input length is C x sum(n^2) at any input size while the feature map changes; SPPNet's windows
(ceil(a/n), stride floor(a/n)) where they tile the map, PyTorch's adaptive bins elsewhere; counts equal fvcore's."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from spinescope.analysis.counting import count_with_fvcore
from spinescope.analysis.counting.fast import count_differences, count_model
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.describe import describe
from spinescope.spinenet.heads.classification import parse_pooling, sppnet_window
from spinescope.spinenet.registry import head_options

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("pooling,bins", [("spp", 16 + 4 + 1), ("spp:6,3,2,1", 36 + 9 + 4 + 1),
                                          ("spp_avg", 21), ("spp_avg:3", 9), ("gap", 1)])
def test_classifier_input_length_is_the_same_at_two_input_sizes(pooling, bins):
    """A model described at 224 px runs at 320 px: the pooled map grows (28 -> 40 px at P3), the classifier's
    input stays 128 channels x sum(n^2) bins and the logits keep their shape."""
    spec = load_builtin("spinenet-49s")
    model = build_model(spec, "classification", 224, num_classes=7, pooling=pooling)
    assert model.head.fc.in_features == 128 * bins
    for size, side in ((224, 28), (320, 40)):
        structure = describe(spec, size, "classification", num_classes=7, pooling=pooling)
        assert structure.features["P3"] == (128, side, side)
        assert structure.layer("head.fc").attrs["in_features"] == 128 * bins
        with torch.no_grad():
            assert model(torch.zeros(1, 3, size, size)).shape == (1, 7)


def sppnet_pool(x, n):
    """SPPNet's pooling of one level, literally: a sliding max-pool with window ceil(a/n) and stride floor(a/n)."""
    a = x.shape[-1]
    return F.max_pool2d(x, math.ceil(a / n), a // n)


def adaptive_bins_by_hand(x, n):
    """Bin i spans [floor(i a / n), ceil((i + 1) a / n)) on each axis; the maximum of each bin."""
    a = x.shape[-1]
    edges = [(math.floor(i * a / n), math.ceil((i + 1) * a / n)) for i in range(n)]
    return torch.stack([torch.stack([x[..., r0:r1, c0:c1].amax((-2, -1)) for c0, c1 in edges], -1)
                        for r0, r1 in edges], -2)


def test_spp_bins_are_sppnets_windows_where_they_tile_and_adaptive_bins_elsewhere():
    generator = torch.Generator().manual_seed(0)
    model = build_model(load_builtin("spinenet-mobile-49xs"), "classification", 64, pooling="spp:6,4,3,2,1")
    pools = list(model.head.pool)
    assert [pool.output_size for pool in pools] == [6, 4, 3, 2, 1]
    tiled = 0
    for a in range(1, 30):
        x = torch.randn(1, 3, a, a, generator=generator)
        for pool, n in zip(pools, (6, 4, 3, 2, 1)):
            out = pool(x)
            assert out.shape == (1, 3, n, n)  # n x n bins even for a map smaller than n
            assert torch.equal(out, adaptive_bins_by_hand(x, n))
            if sppnet_window(a, n):
                tiled += 1
                assert sppnet_window(a, n) == (math.ceil(a / n), a // n)
                assert torch.equal(out, sppnet_pool(x, n))
            elif a >= n:  # SPPNet's sliding windows make more than n bins, or leave pixels out
                window, stride = math.ceil(a / n), a // n
                assert (a - window) // stride + 1 != n or (n - 1) * stride + window < a
    assert tiled > 50
    # SPPNet's own case: conv5 of 13 x 13, pyramid 6, 3, 2, 1 (13 mod n <= 1 for every level).
    assert [sppnet_window(13, n) for n in (6, 3, 2, 1)] == [(3, 2), (5, 4), (7, 6), (13, 13)]


@pytest.mark.parametrize("pooling", ["spp", "spp:6,3,2,1", "spp_avg:4,2,1"])
@pytest.mark.parametrize("size", [64, 96])
def test_spp_counts_equal_fvcore_and_a_hand_count(pooling, size):
    spec = load_builtin("spinenet-mobile-49xs")
    fast = count_model(spec, size, "classification", num_classes=10, pooling=pooling)
    assert count_differences(fast, count_with_fvcore(spec, size, "classification", num_classes=10,
                                                     pooling=pooling)) == []
    levels = parse_pooling(pooling)[1]
    inputs = 24 * sum(n * n for n in levels)  # 24 endpoint channels
    assert fast.params["head"] == fast.params["head.fc"] == inputs * 10 + 10
    assert fast.ops["head.fc"] == {"linear": inputs * 10}
    if pooling.startswith("spp_avg"):
        side = math.ceil(size / 8)
        assert fast.ops["head.pool"] == {"adaptive_avg_pool2d": len(levels) * 24 * side * side}
    else:
        assert fast.uncounted["head.pool"] == {"aten::adaptive_max_pool2d": len(levels)}


@pytest.mark.parametrize("bad", ["max", "spp:", "spp:0", "spp:4,4", "spp:4,2,1,x", "gap:1", "spp:9,8,7,6,5,4,3,2,1",
                                 "spp:\x1b[31m"])
def test_bad_poolings_are_refused_in_one_line(bad):
    with pytest.raises(ValueError) as error:
        head_options("classification", pooling=bad)
    assert "\n" not in str(error.value) and "\x1b" not in str(error.value)


def test_cli_prints_the_classifier_input_length_at_two_sizes():
    lines = {}
    for size in (224, 320):
        result = subprocess.run([sys.executable, "-m", "spinescope", "analyze", "spinenet-49s", "--input-size",
                                 str(size), "--head", "classification", "--pooling", "spp", "--spp-levels", "4,2,1"],
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        lines[size] = next(line for line in result.stdout.splitlines() if "classifier input" in line)
    assert "128 channels x 21 bins = 2,688 values at 224 px from a 128x28x28 map" in lines[224]
    assert "128 channels x 21 bins = 2,688 values at 320 px from a 128x40x40 map" in lines[320]
    result = subprocess.run([sys.executable, "-m", "spinescope", "analyze", "spinenet-49s@200", "--head",
                             "classification", "--pooling", "spp_avg", "--spp-levels", "6,3,2,1", "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    data = json.loads(result.stdout)["classifier_input"]
    assert (data["length"], data["levels"], data["pooled_map"]) == (128 * 50, [6, 3, 2, 1], [128, 25, 25])
    bad = subprocess.run([sys.executable, "-m", "spinescope", "analyze", "spinenet-49s", "--head", "classification",
                          "--pooling", "spp", "--spp-levels", "4,\x1b2"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "\x1b" not in bad.stderr
    assert "Traceback" not in bad.stderr
