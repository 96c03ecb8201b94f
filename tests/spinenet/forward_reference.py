"""Reference outputs of the real forward pass, for tests/spinenet/test_inplace_forward.py: small built-ins with
seeded random weights (no batch norm is an identity, no add or max trivial) on seeded random images, summarised
per output tensor (shape, sums, extremes and a few values at fixed positions) and, in training, the loss and the
gradient norms. The stored file is this script's output:

    .venv/bin/python tests/spinenet/forward_reference.py      # rewrites tests/spinenet/forward_reference.json
"""
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin

REFERENCE_FILE = Path(__file__).with_name("forward_reference.json")
EVAL_CASES = [("spinenet-49s", "retinanet"), ("spinenet-49s", "classification"),
              ("spinenet-mobile-49xs", "retinanet"), ("resnet50-fpn", "none")]
SIZES = (97, 128)  # level-1 side 49 (symmetric SAME padding) and 64 (one extra pixel)
TRAINING_CASES = ("spinenet-49s", "spinenet-mobile-49xs", "resnet50-fpn")
SAMPLES = 8  # values kept per output tensor, evenly spaced over its elements
GRADIENT_NORMS = 8  # parameters whose gradient norm is kept, evenly spaced over the parameters


def randomise(model: torch.nn.Module) -> torch.nn.Module:
    """Returns `model` with seeded random weights and BN statistics (running variances in [0.5, ...))."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if tensor.is_floating_point():
                values = torch.randn(tensor.shape, generator=generator) * 0.2
                tensor.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)
    return model


def images(size: int) -> torch.Tensor:
    """Returns the seeded batch of two size x size images."""
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))


def flat(output) -> list[torch.Tensor]:
    """Every tensor of a model's output (a tensor, a dict of tensors or of tensor pairs), in a fixed order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        return [t for key in output for t in flat(output[key])]
    return [t for item in output for t in flat(item)]


def summary(tensor: torch.Tensor) -> dict:
    """Returns the shape, sum, sum of absolute values, sum of squares, min, max and SAMPLES values of `tensor`."""
    values = tensor.detach().double().flatten()
    positions = torch.linspace(0, values.numel() - 1, SAMPLES).round().long()
    return {"shape": list(tensor.shape), "sum": values.sum().item(), "abs_sum": values.abs().sum().item(),
            "square_sum": values.square().sum().item(), "min": values.min().item(), "max": values.max().item(),
            "samples": values[positions].tolist()}


def eval_outputs(name: str, head: str, size: int) -> list[dict]:
    """Returns the summaries of every output tensor of built-in `name` with `head` in eval mode."""
    model = randomise(build_model(load_builtin(name), head, size))
    with torch.no_grad():
        return [summary(tensor) for tensor in flat(model(images(size)))]


def training_step(name: str) -> dict:
    """Returns the cross-entropy loss of a classification model of built-in `name` in training mode at 64 px, and
    the gradient norms of GRADIENT_NORMS of its parameters (by name) after backward."""
    model = randomise(build_model(load_builtin(name), "classification", 64, num_classes=10)).train()
    # Batch norm over 1x1 maps of a batch of 2 magnifies rounding: the reference was written with 2 threads, and
    # 1 thread moves SpineNet-49S's loss by 0.4%, so the step always runs with 2.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        loss = F.cross_entropy(model(images(64)), torch.tensor([3, 7]))
        loss.backward()
    finally:
        torch.set_num_threads(threads)
    named = list(model.named_parameters())
    picked = torch.linspace(0, len(named) - 1, GRADIENT_NORMS).round().long().tolist()
    return {"loss": loss.item(), "gradient_norms": {named[i][0]: named[i][1].grad.norm().item() for i in picked},
            "total_gradient_norm": torch.cat([p.grad.flatten() for _, p in named]).norm().item()}


def reference() -> dict:
    """Returns everything the stored file holds."""
    return {"eval": {f"{name}/{head}/{size}": eval_outputs(name, head, size)
                     for name, head in EVAL_CASES for size in SIZES},
            "training": {name: training_step(name) for name in TRAINING_CASES}}


if __name__ == "__main__":
    REFERENCE_FILE.write_text(json.dumps(reference(), indent=1) + "\n")
    print(f"wrote {REFERENCE_FILE}")
