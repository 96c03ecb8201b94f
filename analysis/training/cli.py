"""CLI: `spinescope make-dataset DIR --images N --size S --seed K` (a synthetic COCO-format detection set) and
`spinescope train SPEC --data DIR --steps N [--batch B] [--size S] [--seed K] [--device cpu|cuda|auto]
[--width W]` (a short RetinaNet training, evaluated with pycocotools: a proxy AP, stored in SQLite).

Bad arguments, files and requests too large are one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

from spinescope.analysis.cli import CliError, int_in_range, load_spec_argument
from spinescope.spinenet.validate import printable

DEFAULT_SIZE = 128


def _size_type(low: int, high: int, what: str):
    def parse(text: str) -> tuple[int, int]:
        from spinescope.spinenet.input_size import hw, parse_size

        try:
            return hw(parse_size(text, low, high, what))
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return parse


def _positive_float(what: str, high: float):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {printable(repr(text[:40]))}") from None
        if not (math.isfinite(value) and 0 < value <= high):
            raise argparse.ArgumentTypeError(f"{what} must be above 0 and at most {high:g}, got {printable(text[:40])}")
        return value
    return parse


def register(subparsers) -> None:
    from spinescope.analysis.training.dataset import MAX_IMAGES, MAX_OBJECTS, MAX_SIDE, MIN_SIDE
    from spinescope.analysis.training.train import MAX_BATCH, MAX_STEPS

    sub = subparsers.add_parser("make-dataset", help="write a small synthetic COCO-format detection set (shapes at "
                                                     "many scales on noise) for proxy training")
    sub.add_argument("directory", metavar="DIR", help="a new (or empty) directory")
    sub.add_argument("--images", type=int_in_range(1, MAX_IMAGES, "images"), default=64,
                     help="training images (default 64)")
    sub.add_argument("--val-images", type=int_in_range(1, MAX_IMAGES, "validation images"),
                     help="validation images (default: a quarter of --images, at least 8)")
    sub.add_argument("--size", type=_size_type(MIN_SIDE, MAX_SIDE, "image size"), default=(128, 128),
                     help=f"image size in pixels, N or WIDTHxHEIGHT, {MIN_SIDE}-{MAX_SIDE} (default 128)")
    sub.add_argument("--seed", type=int_in_range(0, 2**63 - 1, "seed"), default=0)
    sub.add_argument("--max-objects", type=int_in_range(1, MAX_OBJECTS, "objects per image"), default=6,
                     help="at most this many objects per image (default 6)")
    sub.set_defaults(handler=_cmd_make_dataset)

    sub = subparsers.add_parser("train", help="train RetinaNet with a spec's backbone for a few steps on a COCO-format "
                                              "directory and report its proxy AP (pycocotools), stored in SQLite")
    sub.add_argument("spec", help="built-in name or spec path")
    sub.add_argument("--data", required=True, metavar="DIR",
                     help="COCO-format directory: annotations/{train,val}.json, images in train/ and val/")
    sub.add_argument("--steps", type=int_in_range(1, MAX_STEPS, "steps"), required=True, help="SGD steps")
    sub.add_argument("--batch", type=int_in_range(1, MAX_BATCH, "batch"), default=2, help="images per step (default 2)")
    sub.add_argument("--size", type=_size_type(32, 2048, "input size"),
                     help="input size the images are resized to, N or WIDTHxHEIGHT (default 128)")
    sub.add_argument("--width", type=_positive_float("width scale", 4.0), default=1.0,
                     help="multiply the spec's widths (endpoints, head and blocks) by this, e.g. 0.25 (default 1)")
    sub.add_argument("--seed", type=int_in_range(0, 2**63 - 1, "seed"), default=0,
                     help="initialization, image order and flips (default 0)")
    sub.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                     help="auto: a CUDA GPU when present, else the CPU")
    sub.add_argument("--head", choices=("auto", "spec", "torchvision"), default="auto",
                     help="spec: the authors' RetinaNet head (the spec's convs and width, a BN per level); "
                          "torchvision: torchvision's 4-conv head, initialized as the authors'; auto (default): "
                          "spec when its batch norms see 8 values per channel or more (batch x the P7 map), else "
                          "torchvision")
    sub.add_argument("--lr", type=_positive_float("learning rate", 10.0),
                     help="SGD learning rate (default per 8 images 0.02 with the spec head, 0.08 with torchvision's, "
                          "scaled to the batch)")
    sub.add_argument("--db", metavar="PATH", help="SQLite file for the result (default: training.sqlite in "
                                                  "SpineScope's data directory, $SPINESCOPE_HOME when set)")
    sub.add_argument("--no-save", action="store_true", help="do not store the result")
    sub.add_argument("--json", action="store_true", help="print the result as one JSON object")
    sub.set_defaults(handler=_cmd_train)


def _cmd_make_dataset(args) -> int:
    from spinescope.analysis.training.dataset import DatasetError, make_dataset

    try:
        summary = make_dataset(args.directory, args.images, args.val_images, args.size, args.seed, args.max_objects)
    except DatasetError as error:
        raise CliError(str(error)) from None
    low, high = summary.side_range
    sizes = summary.size_counts
    height, width = args.size
    print(f"wrote {printable(summary.directory)}: {summary.images['train']} train and {summary.images['val']} val "
          f"images of {width}x{height} px, {summary.objects['train']} + {summary.objects['val']} objects of 3 classes, "
          f"sides {low:.0f}-{high:.0f} px (COCO small {sizes['small']}, medium {sizes['medium']}, large "
          f"{sizes['large']}), {summary.bytes_written / 2**20:.1f} MiB")
    return 0


def _report(result, stored: str | None) -> str:
    from spinescope.analysis.training.evaluate import LABELS

    height, width = result.image_size
    tenth = max(1, len(result.losses) // 10)
    first, last = sum(result.losses[:tenth]) / tenth, sum(result.losses[-tenth:]) / tenth
    lines = [f"{result.label}: {result.spec_name} ({result.spec_hash}), {result.steps} steps x {result.batch_size} "
             f"images at {width}x{height} px, width x{result.width_scale:g}, {result.head} head, {result.device}, "
             f"seed {result.seed}"]
    for key, name in LABELS.items():
        value = result.proxy_ap if key == "ap" else getattr(result, key)
        lines.append(f"  proxy {name:<10} {'-' if value is None else f'{value:.4f}'}")
    lines.append(f"  loss {first:.3f} -> {last:.3f} (mean of the first and last tenth of the steps)")
    lines.append(f"  {result.seconds:.1f} s (training {result.train_seconds:.1f} s, {result.images_per_second:.1f} "
                 f"images/s; evaluation {result.eval_seconds:.1f} s)")
    lines.append("not COCO AP: a proxy from a short training on this dataset, for comparing candidates")
    if stored:
        lines.append(stored)
    return "\n".join(lines)


def _cmd_train(args) -> int:
    from spinescope.analysis.training.dataset import DatasetError
    from spinescope.analysis.training.progress import ProgressBar
    from spinescope.analysis.training.store import default_path, save_result
    from spinescope.analysis.training.train import train_proxy
    from spinescope.spinenet.input_size import hw

    spec, at_size = load_spec_argument(args.spec)
    size = args.size or (hw(at_size) if at_size else (DEFAULT_SIZE, DEFAULT_SIZE))  # --size, else NAME@SIZE
    database = args.db if args.db else None
    if not args.no_save:
        database = database or str(default_path())  # a data directory that cannot be written fails before training
    bar = ProgressBar()
    try:
        result = train_proxy(spec, args.data, steps=args.steps, batch_size=args.batch, image_size=tuple(size),
                             seed=args.seed, device=args.device, progress=bar, width_scale=args.width,
                             learning_rate=args.lr, head=args.head)
    except (DatasetError, FloatingPointError) as error:
        raise CliError(str(error)) from None
    except ValueError as error:  # an argument or width outside the limits (SpecError and ResourceLimitError pass)
        from spinescope.analysis.limits import ResourceLimitError
        from spinescope.spinenet.validate import SpecError

        if isinstance(error, (ResourceLimitError, SpecError)):
            raise
        raise CliError(str(error)) from None
    finally:
        bar.close()
    stored = None
    if not args.no_save:
        try:
            row = save_result(result, database)
        except Exception as error:  # noqa: BLE001 - the result is printed whatever happens to the file
            print(f"error: cannot store the result in {printable(database)} ({printable(error)})", file=sys.stderr)
        else:
            stored = f"stored as run {row} in {printable(database)}"
    if args.json:
        data = result.to_dict()
        data["stored"] = stored
        print(json.dumps(data, indent=2))
    else:
        print(_report(result, stored))
    return 0
