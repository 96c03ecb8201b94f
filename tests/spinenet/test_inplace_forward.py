"""The forward pass (in-place activations and residual adds, SAME max-pooling without a padded copy) gives the
stored reference outputs in eval and the stored loss and gradient norms in training (autograd accepts the in-place
ops); `forward_reference.py` beside this file wrote them. SAME max-pooling equals its definition, -inf padding then
pooling, bit for bit."""
import json

import pytest
import torch
import torch.nn.functional as F

import spinescope.spinenet.layers
from forward_reference import REFERENCE_FILE, eval_outputs, training_step
from spinescope.spinenet.geometry import same_output_side, same_pool_arguments

REFERENCE = json.loads(REFERENCE_FILE.read_text())
RELATIVE = 2e-4  # float32 results of another CPU or torch build differ in the last digits, a wrong op in the first


def max_pool_same_by_padding(x, kernel, stride):
    """TF 'SAME' max-pooling as defined: pad with -inf to ceil(side / stride) windows (the extra pixel after),
    then pool."""
    pads = []
    for side in (int(x.shape[-1]), int(x.shape[-2])):
        out = -(-side // stride)
        total = max((out - 1) * stride + kernel - side, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), kernel, stride)


def assert_close_summaries(actual: dict, expected: dict) -> None:
    scale = max(abs(expected["min"]), abs(expected["max"]))
    assert actual["shape"] == expected["shape"]
    assert actual["sum"] == pytest.approx(expected["sum"], rel=RELATIVE, abs=RELATIVE * expected["abs_sum"])
    for key in ("abs_sum", "square_sum"):
        assert actual[key] == pytest.approx(expected[key], rel=RELATIVE), key
    for key in ("min", "max", "samples"):
        assert actual[key] == pytest.approx(expected[key], rel=RELATIVE, abs=RELATIVE * scale), key


@pytest.mark.parametrize("case", sorted(REFERENCE["eval"]))
def test_eval_outputs_are_the_stored_reference(case):
    name, head, size = case.split("/")
    expected = REFERENCE["eval"][case]
    actual = eval_outputs(name, head, int(size))
    assert len(actual) == len(expected) > 0
    for a, b in zip(actual, expected):
        assert_close_summaries(a, b)


@pytest.mark.parametrize("name", sorted(REFERENCE["training"]))
def test_training_loss_and_gradients_are_the_stored_reference(name):
    """Autograd through the in-place ops: no error, and the stored loss and gradient norms."""
    expected = REFERENCE["training"][name]
    actual = training_step(name)
    assert actual["loss"] == pytest.approx(expected["loss"], rel=RELATIVE)
    assert actual["total_gradient_norm"] == pytest.approx(expected["total_gradient_norm"], rel=10 * RELATIVE)
    assert actual["gradient_norms"].keys() == expected["gradient_norms"].keys()
    for parameter, norm in expected["gradient_norms"].items():
        assert actual["gradient_norms"][parameter] == pytest.approx(norm, rel=10 * RELATIVE, abs=1e-9), parameter


@pytest.mark.parametrize("kernel,stride", [(3, 2), (5, 2), (3, 4), (5, 4), (5, 8), (3, 1), (2, 1), (2, 2)])
def test_max_pool_same_is_padding_then_pooling(kernel, stride):
    """Every side 1..40 and non-square maps: same output, bit for bit; the output side is ceil(side / stride)."""
    generator = torch.Generator().manual_seed(0)
    for height in range(1, 41):
        for width in (height, height + 1, max(1, height - 3)):
            x = torch.randn(1, 2, height, width, generator=generator)
            new = spinescope.spinenet.layers.max_pool_same(x, kernel, stride)
            assert new.shape[-2:] == (same_output_side(height, stride), same_output_side(width, stride))
            assert torch.equal(new, max_pool_same_by_padding(x, kernel, stride)), (height, width)


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
