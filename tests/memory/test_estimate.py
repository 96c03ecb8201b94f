"""The training-memory estimate against independent figures: parameter counts of the real module, a hand
formula for the stem's saved tensors, the tensors autograd actually saves (saved_tensors_hooks on the meta
device, deduplicated by storage), and real training steps on this machine (peak RSS growth) and, on a
GPU, torch.cuda.max_memory_allocated."""
import pytest
import torch
from torch.multiprocessing.reductions import StorageWeakRef

from spinescope.analysis.latency.request import cuda_available
from spinescope.analysis.memory.estimate import estimate_training_memory, max_batch
from spinescope.analysis.memory.measure import measure_in_subprocess
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin

CASES = [("spinenet-49s", "retinanet"), ("resnet50-fpn", "retinanet"), ("spinenet-mobile-49xs", "classification"),
         ("spinenet-49", "none")]


@pytest.mark.parametrize("name,head", CASES)
def test_weights_gradients_optimizer_from_the_real_module(name, head):
    model = build_model(load_builtin(name), head, 128, device="meta")
    params = list(model.parameters())
    elements = sum(p.numel() for p in params)
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    sgd = estimate_training_memory(load_builtin(name), 128, head, 2, "sgd")
    adamw = estimate_training_memory(load_builtin(name), 128, head, 2, "adamw")
    assert sgd.params == elements
    assert sgd.weights_bytes == 4 * elements + buffers and sgd.gradients_bytes == 4 * elements
    assert sgd.optimizer_bytes == 4 * elements  # one momentum buffer
    assert adamw.optimizer_bytes == 8 * elements + 4 * len(params)  # exp_avg, exp_avg_sq, a step per tensor


def test_stem_activations_by_hand():
    # SpineNet-49S at 64 px: conv 7x7/2 saves the image; BN its input (64 x 32 x 32) and 2 x 64 statistics; ReLU (in
    # place on BN's output) its output; the SAME max-pool (k3, s2, side 32 -> 16, max_pool2d's own padding) that same
    # tensor, saved once, and int64 indices 64 x 16 x 16. Batch 3, fp32.
    per_image = 3 * 64 * 64 * 4 + 2 * 64 * 32 * 32 * 4 + 64 * 16 * 16 * 8
    estimate = estimate_training_memory(load_builtin("spinenet-49s"), 64, "none", 3)
    stem = next(row for row in estimate.blocks if row["id"] == "backbone.stem_conv")
    assert stem["activations_bytes"] == 3 * per_image + 2 * 64 * 4
    assert stem["params"] == 64 * 3 * 7 * 7 + 2 * 64
    assert sum(row["activations_bytes"] for row in estimate.blocks) == estimate.activations_bytes


def saved_for_backward(name, head, size, batch, precision="fp32"):
    """Bytes autograd saves in one forward pass of the real module (meta device), each storage once, weights not."""
    model = build_model(load_builtin(name), head, size, device="meta").train()
    params = {StorageWeakRef(p.untyped_storage()).cdata for p in model.parameters()}
    seen = {}

    def pack(tensor):
        ref = StorageWeakRef(tensor.untyped_storage())
        if ref.cdata not in params:
            seen[ref.cdata] = tensor.untyped_storage().nbytes()
        return tensor
    images = torch.empty(batch, 3, size, size, device="meta")
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(images)
    return sum(seen.values())


@pytest.mark.parametrize("name,head", CASES)
def test_activations_match_what_autograd_saves(name, head):
    real = saved_for_backward(name, head, 128, 2)
    estimate = estimate_training_memory(load_builtin(name), 128, head, 2).activations_bytes
    assert estimate == pytest.approx(real, rel=0.05)  # measured: -0.4 % to +3.4 % (README)


def test_batch_scaling_and_max_batch():
    spec = load_builtin("spinenet-49s")
    one, two, four = (estimate_training_memory(spec, 128, "retinanet", b) for b in (1, 2, 4))
    # Activations are per image except batch norm's statistics, which do not depend on the batch.
    assert four.activations_bytes - two.activations_bytes == 2 * (two.activations_bytes - one.activations_bytes)
    assert one.weights_bytes == four.weights_bytes and one.gradients_bytes == four.gradients_bytes
    budget = four.peak_bytes + 1
    best = max_batch(spec, budget, 128, "retinanet")
    assert estimate_training_memory(spec, 128, "retinanet", best).peak_bytes <= budget
    assert estimate_training_memory(spec, 128, "retinanet", best + 1).peak_bytes > budget
    assert best >= 4 and max_batch(spec, one.peak_bytes - 1, 128, "retinanet") == 0


@pytest.mark.parametrize("name,head,optimizer,precision", [("spinenet-49s", "retinanet", "sgd", "fp32"),
                                                           ("resnet50-fpn", "none", "adamw", "fp32"),
                                                           ("spinenet-49s", "retinanet", "sgd", "bf16")])
def test_estimate_against_a_real_cpu_training_step(name, head, optimizer, precision):
    real = measure_in_subprocess(spec=name, input_size=128, head=head, batch=2, optimizer=optimizer,
                                 precision=precision, device="cpu", threads=1)
    estimate = estimate_training_memory(load_builtin(name), 128, head, 2, optimizer, precision, device="cpu")
    assert real["weights_bytes"] == estimate.weights_bytes and real["optimizer_bytes"] == estimate.optimizer_bytes
    # The RSS adds the CPU allocator's own overhead to the tensors; measured: -3 % to -15 % (README).
    assert estimate.peak_bytes == pytest.approx(real["peak_bytes"], rel=0.25)


@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_estimate_against_cuda_max_memory_allocated(precision):
    real = measure_in_subprocess(spec="spinenet-49s", input_size=256, head="retinanet", batch=4, optimizer="adamw",
                                 precision=precision, device="cuda")
    estimate = estimate_training_memory(load_builtin("spinenet-49s"), 256, "retinanet", 4, "adamw", precision)
    assert estimate.peak_bytes == pytest.approx(real["peak_bytes"], rel=0.25)


def test_bad_options_are_one_line():
    spec = load_builtin("spinenet-49s")
    for kwargs, text in (({"batch": 0}, "batch must be a positive integer"),
                         ({"optimizer": "adam"}, "unknown optimizer 'adam'"),
                         ({"precision": "fp8"}, "unknown precision 'fp8'"),
                         ({"device": "tpu"}, "unknown device 'tpu'")):
        with pytest.raises(ValueError, match=text):
            estimate_training_memory(spec, 64, **kwargs)
