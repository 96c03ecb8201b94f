"""The classifier's input length at two input sizes (SPPNet: C x sum(n^2), whatever the size) while the pooled map
follows the input (ceil(S / 8) for SpineNet's P3): the shared description, the real module and the CLI."""
import json
import math
from pathlib import Path

import pytest
import torch

from spinescope.analysis.architecture.classifier_input import classifier_input, other_size, summary
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin
from cli_runs import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("pooling, bins", [("spp", 16 + 4 + 1), ("spp:6,3,2,1", 36 + 9 + 4 + 1), ("spp_avg", 21),
                                           ("gap", 1)])
def test_length_is_channels_times_bins_at_two_sizes_and_the_map_differs(pooling, bins):
    spec = load_builtin("spinenet-49s")  # endpoints of 128 channels
    first, second = classifier_input(spec, 224, pooling), classifier_input(spec, 640, pooling)
    assert first.length == second.length == 128 * bins
    assert (first.pooled_map, second.pooled_map) == ((128, 28, 28), (128, 80, 80))  # P3: ceil(S / 8)
    model = build_model(spec, "classification", 224, pooling=pooling)
    assert model.head.fc.in_features == first.length
    with torch.no_grad():  # the same module runs at the other size: the classifier's input does not change
        assert model(torch.zeros(1, 3, 96, 96)).shape == model(torch.zeros(1, 3, 100, 100)).shape == (1, 1000)


def test_summary_line_and_the_second_size():
    spec = load_builtin("spinenet-49")
    assert (other_size(640), other_size(224)) == (224, 640)
    line = summary(classifier_input(spec, 224, "spp"), classifier_input(spec, 640, "spp"))
    assert line.startswith("SPP {4,2,1}: 256 x 21 = 5,376 inputs at 224 px (28x28 map) and at 640 px (80x80 map)")


@pytest.mark.parametrize("size", [224, 300])
def test_cli_prints_the_length_and_the_map_at_this_size_and_another(size):
    side, other_side = math.ceil(size / 8), math.ceil(other_size(size) / 8)
    result = run("analyze", f"spinenet-49@{size}", "--head", "classification", "--pooling", "spp", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["classifier_input_length"] == 256 * 21
    assert data["pooled_feature_map"] == [256, side, side]
    assert data["classifier_input"]["at_other_size"] == {"input_size": other_size(size),
                                                         "pooled_map": [256, other_side, other_side],
                                                         "length": 256 * 21}
    text = run("analyze", f"spinenet-49@{size}", "--head", "classification", "--pooling", "spp").stdout
    assert (f"SPP {{4,2,1}}: 256 x 21 = 5,376 inputs at {size} px ({side}x{side} map) and at {other_size(size)} px "
            f"({other_side}x{other_side} map)") in text
