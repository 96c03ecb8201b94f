"""Shared checks of a real forward pass: the output shapes by hand, ceil(side / 2**level) per axis and level.
`size` is a square side or a (height, width) pair."""
import math

import torch

from spinescope.spinenet.build import build_model


def expected_shapes(spec, size):
    height, width = (size, size) if isinstance(size, int) else size
    channels = spec.scaling.endpoints_num_filters
    return {f"P{level}": (1, channels, math.ceil(height / 2 ** level), math.ceil(width / 2 ** level))
            for level in range(spec.min_level, spec.max_level + 1)}


def check_real_forward(spec, size):
    """Runs the backbone on the CPU with random weights and input; asserts the output shapes and finite values."""
    torch.manual_seed(0)
    model = build_model(spec, "none", size)
    with torch.inference_mode():
        features = model(torch.randn(1, 3, *((size, size) if isinstance(size, int) else size)))
    assert {k: tuple(v.shape) for k, v in features.items()} == expected_shapes(spec, size)
    assert all(torch.isfinite(v).all() for v in features.values())
