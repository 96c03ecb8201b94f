"""Proxy training throughput (`spinescope train`, `analysis.training.train.train_proxy`) on this machine: a seeded
synthetic set from `make_dataset`, each spec trained for N steps at a tiny width and size, the runs interleaved
(spec A, spec B, A, B, ...) and their medians printed side by side: training images/s, seconds per candidate of
N steps (data loading, model building, training, batch-norm recalibration and pycocotools evaluation), and the proxy
AP reached (short training on the synthetic set: not COCO AP).

Usage: python benchmarks/bench_proxy_train.py [--specs spinenet-49 resnet50-fpn] [--width 0.25] [--size 128]
       [--batch 8] [--steps 20] [--repeats 3] [--threads 1] [--device cpu] [--images 64] [--head auto|spec|torchvision]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from spinescope import load_spec  # noqa: E402
from spinescope.analysis.counting.fast import count_model  # noqa: E402
from spinescope.analysis.training.dataset import make_dataset  # noqa: E402
from spinescope.analysis.training.train import scale_width, train_proxy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="+", default=["spinenet-49", "resnet50-fpn"])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--head", choices=("auto", "spec", "torchvision"), default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        data = make_dataset(Path(folder) / "shapes", images=args.images, size=args.size, seed=0)
        made = time.perf_counter() - started
        runs: dict[str, list] = {spec: [] for spec in args.specs}
        for _ in range(args.repeats):
            for spec in args.specs:
                runs[spec].append(train_proxy(spec, Path(folder) / "shapes", steps=args.steps,
                                              batch_size=args.batch, image_size=(args.size, args.size), seed=0,
                                              device=args.device, width_scale=args.width, head=args.head))
    device = runs[args.specs[0]][0].device
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {args.threads} thread(s)"
    used = sorted({r.head for results in runs.values() for r in results})
    print(f"proxy training: RetinaNet ({' and '.join(used)} head), {args.size} px, width x{args.width:g}, batch "
          f"{args.batch}, {args.steps} steps, {args.repeats} interleaved runs each, medians; {name}, torch "
          f"{torch.__version__}")
    print(f"dataset: {data.images['train']} train + {data.images['val']} val images of {args.size} px "
          f"({data.objects['train']} + {data.objects['val']} objects) written in {made:.1f} s")
    print(f"{'spec':<16}{'backbone MACs':>15}{'images/s':>10}{'s/step':>8}{'s/candidate':>13}{'eval s':>8}"
          f"{'proxy AP':>10}{'AP50':>8}")
    rates = {}
    for spec, results in runs.items():
        tiny = scale_width(load_spec(spec), args.width)
        macs = count_model(tiny, args.size).macs("")
        rates[spec] = statistics.median(r.images_per_second for r in results)
        print(f"{spec:<16}{macs / 1e6:>13,.0f}M{rates[spec]:>10.1f}"
              f"{statistics.median(r.train_seconds / r.steps for r in results):>8.3f}"
              f"{statistics.median(r.seconds for r in results):>13.1f}"
              f"{statistics.median(r.eval_seconds for r in results):>8.2f}"
              f"{statistics.median(r.proxy_ap for r in results):>10.4f}"
              f"{statistics.median(r.ap50 for r in results):>8.4f}")
    if len(args.specs) > 1:
        first = args.specs[0]
        print("; ".join(f"{spec} / {first}: {rates[spec] / rates[first]:.2f}x the images/s" for spec in args.specs[1:]))


if __name__ == "__main__":
    main()
