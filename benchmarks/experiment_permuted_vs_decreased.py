"""Issue 22's small experiment: at matched MACs, the proxy AP of sampled scale-permuted candidates against sampled
scale-decreased ones on the synthetic set.

Both populations come from the ResNet-50 seed (`analysis.search`): "scale-permuted" samples with the moves permute
and parents (block order and cross-scale connections drawn), "scale-decreased" with parents alone (the seed's
order: levels rising through the intermediate blocks, the outputs last). Both are constrained to the seed's MACs
+-10% (backbone + RetinaNet head at --size, full width), then each is trained tiny (`train_proxy`: widths x
--width, --steps steps of --batch images) with the same training seeds, two candidates at a time in worker
processes. One candidate of each kind is also trained with a second seed, to show the seed-to-seed spread.

Usage: python benchmarks/experiment_permuted_vs_decreased.py [--candidates 3] [--steps 150] [--batch 8]
       [--size 128] [--width 0.25] [--seeds 0] [--head auto|spec|torchvision] [--workers 2] [--images 64]
"""
from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spinescope.analysis.search.space import Constraints, candidate_metrics, make_space, sample_many  # noqa: E402
from spinescope.analysis.training.dataset import make_dataset  # noqa: E402

KINDS = {"scale-permuted": ("permute", "parents"), "scale-decreased": ("parents",)}


def train_one(job: dict) -> dict:
    """Runs in a worker: one proxy training; returns the job with its result's figures."""
    import torch

    from spinescope.analysis.training.train import train_proxy

    torch.set_num_threads(1)
    result = train_proxy(job["spec"], job["data"], steps=job["steps"], batch_size=job["batch"],
                         image_size=(job["size"], job["size"]), seed=job["seed"], device="cpu",
                         width_scale=job["width"], head=job["head"])
    return {**{k: v for k, v in job.items() if k != "spec"}, "ap": result.proxy_ap, "ap50": result.ap50,
            "loss": result.final_loss, "seconds": result.seconds, "head_used": result.head}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=3, help="per kind")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds for every candidate")
    parser.add_argument("--head", choices=("auto", "spec", "torchvision"), default="auto")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()

    seed_space = make_space(input_size=args.size)
    target = candidate_metrics(seed_space.seed, seed_space, receptive=False)["macs"]
    window = Constraints(macs_min=0.9 * target, macs_max=1.1 * target)
    jobs, metrics = [], {}
    for kind, moves in KINDS.items():
        space = make_space(moves=moves, input_size=args.size, constraints=window)
        samples, draws = sample_many(space, args.candidates, seed=0, receptive=True)
        for index, (spec, counted) in enumerate(samples):
            name = f"{kind}-{index}"
            metrics[name] = (counted, draws)
            seeds = args.seeds + ([max(args.seeds) + 1] if index == 0 else [])  # the spread of one candidate
            jobs += [{"name": name, "kind": kind, "spec": spec, "seed": seed} for seed in seeds]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "shapes"
        make_dataset(data, images=args.images, size=args.size, seed=0)
        common = {"data": str(data), "steps": args.steps, "batch": args.batch, "size": args.size,
                  "width": args.width, "head": args.head}
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(train_one, {**job, **common}) for job in jobs]
            results = []
            for future in as_completed(futures):  # each as it arrives, on stderr: a partial run still tells
                results.append(future.result())
                row = results[-1]
                print(f"done {row['name']} seed {row['seed']}: proxy AP {row['ap']:.4f}, AP50 {row['ap50']:.4f}, "
                      f"final loss {row['loss']:.3f}, {row['seconds']:.0f} s", file=sys.stderr, flush=True)
    results.sort(key=lambda row: (list(KINDS).index(row["kind"]), row["name"], row["seed"]))
    elapsed = time.perf_counter() - started
    used = {row["head_used"] for row in results}
    head = " and ".join("the authors' head" if name == "spec" else "torchvision's head" for name in sorted(used))
    print(f"proxy AP (short training on the synthetic shapes set: {args.images} train images of {args.size} px), "
          f"RetinaNet with {head}, widths x{args.width:g}, {args.steps} steps of {args.batch} images, training "
          f"seeds {args.seeds}; MACs matched to the ResNet-50 seed's {target / 1e9:.2f}G +-10% at {args.size} px "
          f"(full width, backbone + head); {len(results)} trainings in {elapsed / 60:.1f} min, {args.workers} "
          "worker(s)")
    print(f"{'candidate':<20}{'seed':>5}{'GMACs':>8}{'P3 RF px':>9}{'proxy AP':>10}{'AP50':>8}{'final loss':>11}")
    for row in results:
        counted, _ = metrics[row["name"]]
        print(f"{row['name']:<20}{row['seed']:>5}{counted['macs'] / 1e9:>8.2f}{counted['rf_P3']:>9}"
              f"{row['ap']:>10.4f}{row['ap50']:>8.4f}{row['loss']:>11.3f}")
    for kind in KINDS:
        rows = [row for row in results if row["kind"] == kind and row["seed"] in args.seeds]
        aps = [row["ap"] for row in rows]
        print(f"{kind}: {len(rows)} trainings, proxy AP median {statistics.median(aps):.4f} (min {min(aps):.4f}, "
              f"max {max(aps):.4f}), final loss median {statistics.median(r['loss'] for r in rows):.3f}")
    for kind in KINDS:
        pair = [row for row in results if row["name"] == f"{kind}-0"]
        print(f"seed spread, {kind}-0: proxy AP " + ", ".join(f"{row['ap']:.4f} (seed {row['seed']})" for row in pair))


if __name__ == "__main__":
    main()
