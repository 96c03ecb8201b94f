"""How RetinaNet starts to train with each backbone, with the authors' initialization (what `build_model` draws,
and torchvision's head initialized as Model Garden's), with the authors' head itself ("spec-head": the spec's own
RetinaNet head, a BN per level and conv, `spec_head=True`) and with PyTorch's defaults (every backbone module's `reset_parameters()` and torchvision's
own RetinaNetHead, as before `spinenet.init`): the loss at step 1 and step N, its relative drop, and the total
gradient norm at step 1 (before clipping), in torchvision's plain loop (SGD lr 0.01, momentum 0.9, gradient norm
clipped to 10) on the seeded synthetic batch of `tests/detection/detection_training.py`.

Usage: python benchmarks/bench_train_init.py [--specs spinenet-49 resnet50-fpn] [--size 128] [--batch 2]
       [--steps 20] [--init all|reference|spec-head|pytorch] [--threads 1] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "detection")]

import torch  # noqa: E402

import spinescope.detection as detection  # noqa: E402
from detection_training import synthetic_batch, train  # noqa: E402


def pytorch_defaults(model: torch.nn.Module, num_classes: int) -> torch.nn.Module:
    """Returns `model` with PyTorch's default init in its backbone and torchvision's own RetinaNet head."""
    from torchvision.models.detection.retinanet import RetinaNetHead

    for module in model.backbone.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    model.head = RetinaNetHead(model.backbone.out_channels, model.anchor_generator.num_anchors_per_location()[0],
                               num_classes)
    return model


def run(spec: str, init: str, args) -> str:
    """Returns one line of the table for `spec` with `init` ("reference", "spec-head" or "pytorch")."""
    images, targets = synthetic_batch(args.seed, batch=args.batch, size=args.size, num_classes=args.classes)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    model = detection.retinanet(spec, args.classes, input_size=args.size, size_divisible=min(args.size, 128),
                                spec_head=init == "spec-head")
    if init == "pytorch":
        model = pytorch_defaults(model, args.classes)
    losses, norms = train(model, images, targets, args.steps)
    drop = (losses[0] - losses[-1]) / losses[0]
    return (f"{init:10s}  {spec:14s}  {losses[0]:8.3f}  {losses[-1]:8.3f}  {drop:7.1%}  {norms[0]:10.2f}  "
            f"{time.perf_counter() - start:6.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="+", default=["spinenet-49", "resnet50-fpn"])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--init", choices=("all", "reference", "spec-head", "pytorch"), default="all")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    inits = ("reference", "spec-head", "pytorch") if args.init == "all" else (args.init,)
    print(f"RetinaNet, {args.size} px, batch {args.batch}, {args.steps} steps, SGD lr 0.01 momentum 0.9, clip 10, "
          f"{args.threads} thread(s), seed {args.seed}, torch {torch.__version__}")
    print(f"{'init':10s}  {'spec':14s}  {'loss 1':>8s}  {'loss ' + str(args.steps):>8s}  {'drop':>7s}  "
          f"{'|grad| 1':>10s}  {'s':>6s}")
    for init in inits:
        for spec in args.specs:
            print(run(spec, init, args), flush=True)


if __name__ == "__main__":
    main()
