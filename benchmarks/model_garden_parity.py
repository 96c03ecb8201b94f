"""Model Garden parity, side by side: what SpineScope counts under each semantics for Model Garden's 16-block
SpineNet-49 list, and how far our modules' outputs are from Model Garden's own (the committed fixtures of
tests/modelgarden, written by benchmarks/make_model_garden_fixtures.py with tf-models-official 2.20) after
`convert-tf`'s conversion, under Model Garden semantics and, for contrast, the reference semantics.

Usage: .venv/bin/python benchmarks/model_garden_parity.py
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from model_garden_cases import MODEL_GARDEN_SPINENET_49, fixture_spec, load_fixture  # noqa: E402
from spinescope.analysis.convert.model_garden import convert  # noqa: E402
from spinescope.analysis.counting import analyze  # noqa: E402
from spinescope.spinenet.build import build_model  # noqa: E402
from spinescope.spinenet.builtins import load_builtin  # noqa: E402
from spinescope.spinenet.formats import read_tuples  # noqa: E402

MODEL_GARDEN_PARAMS = {3: 21_831_488, 2: 22_034_688}  # Model Garden's count_params() of its own build (issue 21)


def counts() -> None:
    print("Model Garden's 16-block SpineNet-49 list, params (trainable), MACs at 640x640, receptive field of P7:")
    print(f"  {'min level':>9s} {'semantics':13s} {'params':>12s} {'Model Garden':>12s} {'MACs':>16s} {'P7 RF':>6s}"
          "  dead blocks")
    for min_level in (3, 2):
        spec = read_tuples(MODEL_GARDEN_SPINENET_49, load_builtin("spinenet-49"), min_level).spec
        for semantics in ("reference", "model_garden"):
            result = analyze(replace(spec, semantics=semantics))
            dead = ", ".join(result.dead_blocks) or "-"
            print(f"  {min_level:>9d} {semantics:13s} {result.params:>12,d} {MODEL_GARDEN_PARAMS[min_level]:>12,d} "
                  f"{result.macs:>16,d} {result.receptive_field['P7']:>6d}  {dead}")


def _relative_l2(ours, theirs) -> float:
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


def _head(spec, state, image, expected):
    """Yields (level, (our class logits, box deltas), (Model Garden's)) of the whole converted model."""
    model = build_model(spec, "retinanet", 256)
    model.load_state_dict(state)
    with torch.no_grad():
        ours = model.head(model.backbone(torch.from_numpy(image)))
    for level, pair in ours.items():
        yield level, tuple(tensor.numpy() for tensor in pair), expected["head"][level]


def outputs() -> None:
    print()
    print("Converted Model Garden checkpoints (random weights, BN statistics not trivial), relative L2 of our float32")
    print("outputs to Model Garden's, per level, under Model Garden semantics | under the reference semantics;")
    print("with a RetinaNet head, its class logits / box deltas:")
    for name in ("spinenet49_tiny", "spinenet49_tiny_swish", "mobile49_tiny"):
        fixture = load_fixture(name)
        config = fixture["config"]
        spec = fixture_spec(config)
        state = {key: torch.from_numpy(value) for key, value in convert(fixture["variables"], spec).state_dict.items()}
        models = {}
        for semantics in ("model_garden", "reference"):
            model = build_model(replace(spec, semantics=semantics), "none", 256)
            model.load_state_dict(state, strict=False)  # the reference keeps a dead block the checkpoint lacks
            models[semantics] = model
        print(f"  {name} ({config['family']}, {config['activation']}, P{config['min_level']}-P{config['max_level']}, "
              f"{config['params']:,} Keras params with BN statistics):")
        for (height, width), image in fixture["inputs"].items():
            with torch.no_grad():
                ours = {semantics: model(torch.from_numpy(image)) for semantics, model in models.items()}
            cells = [f"{level} {_relative_l2(ours['model_garden'][level].numpy(), theirs):.1e} | "
                     f"{_relative_l2(ours['reference'][level].numpy(), theirs):.2f}"
                     for level, theirs in fixture["outputs"][(height, width)].items() if level != "head"]
            print(f"    {height}x{width} (HxW): " + ", ".join(cells))
            if "head" in fixture["outputs"][(height, width)]:
                print(f"    {height}x{width} RetinaNet head, Model Garden semantics: " + ", ".join(
                    f"{level} {_relative_l2(scores, theirs[0]):.1e}/{_relative_l2(boxes, theirs[1]):.1e}"
                    for level, (scores, boxes), theirs in _head(spec, state, image, fixture["outputs"][(height, width)])))


if __name__ == "__main__":
    torch.manual_seed(0)
    counts()
    outputs()
