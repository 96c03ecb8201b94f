"""How RetinaNet starts to train with each backbone, with the authors' initialization (what `build_model` draws,
and torchvision's head initialized as Model Garden's), with the authors' head itself ("spec-head": the spec's own
RetinaNet head, a BN per level and conv, `spec_head=True`) and with PyTorch's defaults (every backbone module's `reset_parameters()` and torchvision's
own RetinaNetHead, as before `spinenet.init`): the loss at step 1 and step N, its relative drop, and the total
gradient norm at step 1 (before clipping), in torchvision's plain loop (SGD lr 0.01, momentum 0.9, gradient norm
clipped to 10) on the seeded synthetic images of `tests/detection/detection_training.py`: one batch again and
again (`--data one`), or a new batch each step (`--data stream`, as a loop over a dataset; the losses are then the
means of the first and of the last `--window` steps). "bb/head" is the median over the steps of the backbone's gradient
norm over the head's: where it is large, global-norm clipping and the backbone's moving features slow the head.

Usage: python benchmarks/bench_train_init.py [--specs spinenet-49 resnet50-fpn] [--size 128] [--batch 2]
       [--steps 20] [--data one|stream] [--window 5] [--clip 10] [--init all|reference|spec-head|pytorch] [--threads 1]
       [--seed 0]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "detection")]

import torch  # noqa: E402

import spinescope.detection as detection  # noqa: E402
from detection_training import run_steps, synthetic_batch  # noqa: E402


def pytorch_defaults(model: torch.nn.Module, num_classes: int) -> torch.nn.Module:
    """Returns `model` with PyTorch's default init in its backbone and torchvision's own RetinaNet head."""
    from torchvision.models.detection.retinanet import RetinaNetHead

    for module in model.backbone.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    model.head = RetinaNetHead(model.backbone.out_channels, model.anchor_generator.num_anchors_per_location()[0],
                               num_classes)
    return model


def batches(args):
    """The (images, targets) of each step: the one seeded batch, or a new one per step."""
    if args.data == "one":
        return [synthetic_batch(args.seed, batch=args.batch, size=args.size, num_classes=args.classes)] * args.steps
    return [synthetic_batch(args.seed + 1000 + step, batch=args.batch, size=args.size, num_classes=args.classes)
            for step in range(args.steps)]


def run(spec: str, init: str, args) -> str:
    """Returns one line of the table for `spec` with `init` ("reference", "spec-head" or "pytorch")."""
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    model = detection.retinanet(spec, args.classes, input_size=args.size, size_divisible=min(args.size, 128),
                                spec_head=init == "spec-head")
    if init == "pytorch":
        model = pytorch_defaults(model, args.classes)
    records = run_steps(model, batches(args), clip=args.clip)
    losses = [record["loss"] for record in records]
    window = 1 if args.data == "one" else min(args.window, len(losses))
    first, last = statistics.mean(losses[:window]), statistics.mean(losses[-window:])
    ratio = statistics.median(record["backbone"] / max(record["head"], 1e-12) for record in records)
    return (f"{init:10s}  {spec:14s}  {first:8.3f}  {last:8.3f}  {(first - last) / first:7.1%}  "
            f"{records[0]['grad']:10.2f}  {ratio:7.2f}  {time.perf_counter() - start:6.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="+", default=["spinenet-49", "resnet50-fpn"])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--data", choices=("one", "stream"), default="one")
    parser.add_argument("--window", type=int, default=5, help="steps averaged at each end with --data stream")
    parser.add_argument("--clip", type=float, default=10.0)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--init", choices=("all", "reference", "spec-head", "pytorch"), default="all")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    inits = ("reference", "spec-head", "pytorch") if args.init == "all" else (args.init,)
    data = "one batch" if args.data == "one" else "a new batch each step"
    print(f"RetinaNet, {args.size} px, batch {args.batch}, {args.steps} steps on {data}, SGD lr 0.01 momentum 0.9, "
          f"clip {args.clip:g}, {args.threads} thread(s), seed {args.seed}, torch {torch.__version__}")
    first, last = (("loss 1", f"loss {args.steps}") if args.data == "one"
                   else (f"first {args.window}", f"last {args.window}"))
    print(f"{'init':10s}  {'spec':14s}  {first:>8s}  {last:>8s}  {'drop':>7s}  {'|grad| 1':>10s}  {'bb/head':>7s}  "
          f"{'s':>6s}")
    for init in inits:
        for spec in args.specs:
            print(run(spec, init, args), flush=True)


if __name__ == "__main__":
    main()
