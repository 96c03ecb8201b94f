"""A small experiment: at matched MACs, the proxy AP of sampled scale-permuted candidates vs scale-decreased ones.

Both groups come from the ResNet-50 seed (`analysis/search/seed.py`) with the same MACs range (backbone + RetinaNet
head at 640 x 640):
- scale-permuted: moves permute + parents (block order and connections drawn at random);
- scale-decreased: moves parents only (the seed's order: intermediate blocks by increasing level, outputs P3..P7
  last; connections drawn at random).
Each group is a random search (`spinescope search --algorithm random --objective proxy-ap`): --candidates samples,
each trained briefly (`train_proxy`: --steps steps of 4 images at 128 px of a synthetic COCO-format set of 64
training and 16 validation images, the candidate narrowed to filter_size_scale 0.25 and 32 channels, its own
training seed) and scored by proxy AP@[.5:.95] on the validation split (a proxy, not COCO AP).

    .venv/bin/python benchmarks/experiment_scale_permuted.py [--candidates 6] [--steps 150] [--workers 2]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spinescope.analysis.search.engine import SearchConfig, TrainSettings, create_run, run_search  # noqa: E402
from spinescope.analysis.search.space import Constraints, make_space  # noqa: E402
from spinescope.analysis.search.store import Store  # noqa: E402

GROUPS = {"scale-permuted": ("permute", "parents"), "scale-decreased": ("parents",)}
MACS = (95e9, 96e9)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=6)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from spinescope.analysis.training.dataset import make_dataset

    folder = Path(tempfile.mkdtemp(prefix="experiment-"))
    make_dataset(folder / "set", images=64, val_images=16, size=128, seed=args.seed)
    train = TrainSettings(dataset=str(folder / "set"), steps=args.steps, batch_size=4, image_size=128, device="cpu")
    store = Store(folder / "s.sqlite")
    print(f"{args.candidates} candidates per group, MACs in [{MACS[0] / 1e9:g}, {MACS[1] / 1e9:g}] G (640 px, "
          f"RetinaNet head); each trained {args.steps} steps x 4 images at 128 px, width 0.25, 32 channels; "
          f"synthetic set 64 train / 16 val images, dataset seed {args.seed}, search seed {args.seed}")
    print(f"{'group':16s} {'n':>3s} {'GMACs med':>9s} {'AP min':>7s} {'AP med':>7s} {'AP max':>7s} {'AP50 med':>8s} "
          f"{'minutes':>7s}")
    for name, moves in GROUPS.items():
        space = make_space(moves=moves, constraints=Constraints(macs_min=MACS[0], macs_max=MACS[1]))
        config = SearchConfig(space, "random", "proxy-ap", budget=args.candidates, seed=args.seed, train=train)
        create_run(store, config, name)
        start = time.perf_counter()
        run_search(store, name, workers=args.workers)
        rows = [row for row in store.candidates(name) if row["status"] == "done"]
        ap = sorted(row["objective"] for row in rows)
        ap50 = [row["metrics"]["ap50"] for row in rows]
        print(f"{name:16s} {len(rows):3d} {statistics.median(r['macs'] for r in rows) / 1e9:9.2f} {ap[0]:7.4f} "
              f"{statistics.median(ap):7.4f} {ap[-1]:7.4f} {statistics.median(ap50):8.4f} "
              f"{(time.perf_counter() - start) / 60:7.1f}")
    print(f"runs stored in {store.path}")


if __name__ == "__main__":
    main()
