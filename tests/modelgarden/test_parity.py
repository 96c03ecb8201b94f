"""A converted Model Garden checkpoint reproduces Model Garden's outputs: fixtures written by TensorFlow Model
Garden itself (benchmarks/make_model_garden_fixtures.py, tf-models-official 2.20), converted by the converter's
core and run through our modules, at a square and a non-square size."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from model_garden_cases import fixture_spec, load_fixture
from spinescope.analysis.convert.model_garden import convert
from spinescope.spinenet.build import build_model

FIXTURE_NAMES = ("spinenet49_tiny", "spinenet49_tiny_swish", "mobile49_tiny")
FLOAT32_NOISE = 1e-4  # relative L2; the measured agreement is about 1e-6


def _relative_l2(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


def _backbone(state_dict: dict) -> dict:
    return {key: value for key, value in state_dict.items() if key.startswith("backbone.")}


def _outputs(spec, state_dict, image: np.ndarray, strict: bool = True, head: str = "none") -> dict:
    """Our backbone's {"P3": array}, or with `head` our model's {"P3": (class logits, box deltas)}."""
    torch.manual_seed(0)
    model = build_model(spec, head, 256)
    model.load_state_dict({name: torch.from_numpy(array) for name, array in state_dict.items()}, strict=strict)
    with torch.no_grad():
        if head == "none":
            return {level: tensor.numpy() for level, tensor in model(torch.from_numpy(image)).items()}
        out = model.head(model.backbone(torch.from_numpy(image)))
        return {level: tuple(tensor.numpy() for tensor in pair) for level, pair in out.items()}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_a_converted_checkpoint_gives_model_gardens_outputs(name):
    fixture = load_fixture(name)
    spec = fixture_spec(fixture["config"])
    conversion = convert(fixture["variables"], spec)
    assert conversion.placed == len(fixture["variables"])  # every checkpoint variable has its place
    assert {(256, 256), (256, 384)} <= set(fixture["inputs"])  # square and non-square (height 256, width 384)
    assert conversion.with_head == ("head" in fixture["config"])
    for size, image in fixture["inputs"].items():
        theirs = dict(fixture["outputs"][size])
        if conversion.with_head:
            head = _outputs(spec, conversion.state_dict, image, head="retinanet")
            expected_head = theirs.pop("head")
            assert sorted(head) == sorted(expected_head)
            for level, (scores, boxes) in expected_head.items():
                assert head[level][0].shape == scores.shape and head[level][1].shape == boxes.shape
                assert _relative_l2(head[level][0], scores) < FLOAT32_NOISE, (name, size, level, "scores")
                assert _relative_l2(head[level][1], boxes) < FLOAT32_NOISE, (name, size, level, "boxes")
        ours = _outputs(spec, _backbone(conversion.state_dict), image)
        assert sorted(ours) == sorted(theirs)
        for level in theirs:
            assert ours[level].shape == theirs[level].shape
            assert _relative_l2(ours[level], theirs[level]) < FLOAT32_NOISE, (name, size, level)


def test_the_reference_semantics_with_the_same_weights_gives_other_outputs():
    """The four differences matter: the same weights in the reference semantics' model (symmetric padding, one 5x5/4
    pool, and the dead block kept, so its tensors are left as initialized) are far from Model Garden's outputs."""
    fixture = load_fixture("spinenet49_tiny")
    spec = fixture_spec(fixture["config"])
    conversion = convert(fixture["variables"], spec)
    image = fixture["inputs"][(256, 256)]
    ours = _outputs(replace(spec, semantics="reference"), _backbone(conversion.state_dict), image, strict=False)
    assert _relative_l2(ours["P3"], fixture["outputs"][(256, 256)]["P3"]) > 0.1


def test_the_mobile_gate_is_model_gardens_hard_sigmoid():
    """With the squeeze-excite gate a sigmoid instead (all else Model Garden's), the outputs leave float32 noise."""
    from spinescope.spinenet.blocks import modules

    fixture = load_fixture("mobile49_tiny")
    spec = fixture_spec(fixture["config"])
    conversion = convert(fixture["variables"], spec)
    image = fixture["inputs"][(256, 256)]
    original = modules.hard_sigmoid
    modules.hard_sigmoid = torch.sigmoid
    try:
        ours = _outputs(spec, _backbone(conversion.state_dict), image)
    finally:
        modules.hard_sigmoid = original
    assert _relative_l2(ours["P3"], fixture["outputs"][(256, 256)]["P3"]) > 10 * FLOAT32_NOISE
