"""Search: how fast is the space sampled and counted, and how does a search scale from 1 to 2 Ray workers?

1. Sampling: 1,000 valid candidates of the default space (the ResNet-50 seed, all four moves, no dead block), each
   drawn, validated, its layout resolved (dead blocks refused) and counted (params and MACs of backbone + RetinaNet
   head at 640 x 640: the fast counter's figures, remembered per part by `analysis.search.costs`, which starts
   empty: the first ~100 candidates are counted whole), draws that fail included, on one core (this process is
   single-threaded). Then the same with the receptive field of every output level (each sample described).
   Caches are cleared and the seed changed between repeats; medians over --repeats.
2. Ray: the same random search (--budget candidates) on a fresh local Ray instance with num_cpus 1 and then 2
   (127.0.0.1, no dashboard). Objective: proxy-ap with a tiny training (2 steps of 2 images at 64 px of an 8-image
   synthetic set, candidates narrowed to filter_size_scale 0.25 and 32 channels, 1 torch thread per worker) when the
   training module is installed, else cost. Each instance is warmed up by a small run first (worker processes
   start and import torch), then --rounds timed runs of the same search; candidates per minute, medians, and the
   ratio 2 workers / 1 worker. Ray's start-up is not in the times. The driver proposes candidates serially.
   The same with the cost objective after a 0.5 s wait that uses no core: the runner's own parallelism, apart from
   how many cores are free.

    .venv/bin/python benchmarks/bench_search.py [--repeats 3] [--budget 12] [--rounds 2] [--skip-ray]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spinescope.analysis.counting.fast import clear_cache  # noqa: E402
from spinescope.analysis.search.costs import clear_costs  # noqa: E402
from spinescope.analysis.search.space import make_space, sample_many  # noqa: E402


def bench_sampling(repeats: int) -> None:
    space = make_space()
    print(f"sampling: {len(space.seed.blocks)}-block ResNet-50 seed, moves {', '.join(space.moves)}, no dead block; "
          f"counted at {space.input_size} px with the '{space.head}' head; {os.cpu_count()} CPU cores here, 1 used")
    for label, receptive in (("drawn + validated + counted", False), ("... + described, RF of P3-P7", True)):
        times, draws = [], []
        for repeat in range(repeats):
            clear_cache()
            clear_costs()
            start = time.perf_counter()
            _, drawn = sample_many(space, 1000, seed=1000 + repeat, receptive=receptive)
            times.append(time.perf_counter() - start)
            draws.append(drawn)
        median = statistics.median(times)
        print(f"  {label:34s} 1,000 valid candidates in {median:6.2f} s median ({1000 / median:6.0f}/s; "
              f"{statistics.median(draws):,.0f} draws; runs {', '.join(f'{t:.2f}' for t in times)} s)")


def waiting_evaluate(task: dict) -> dict:
    """The cost evaluation after 0.5 s of waiting without using a core: what the runner's parallelism gives when
    cores are not the limit."""
    from spinescope.analysis.search.engine import evaluate_task

    time.sleep(0.5)
    return evaluate_task(task)


def bench_ray(budget: int, rounds: int) -> None:
    import ray

    from spinescope.analysis.search.engine import SearchConfig, TrainSettings, create_run, run_search
    from spinescope.analysis.search.store import Store

    folder = Path(tempfile.mkdtemp(prefix="bench-search-"))
    try:
        from spinescope.analysis.training.dataset import make_dataset

        make_dataset(folder / "set", images=8, val_images=4, size=64)
        objective = "proxy-ap"
        train = TrainSettings(dataset=str(folder / "set"), steps=2, batch_size=2, image_size=64, device="cpu")
    except ImportError:
        objective, train = "cost", TrainSettings()
    config = SearchConfig(make_space(), "random", objective, budget=budget, seed=0, train=train)
    store = Store(folder / "s.sqlite")
    print(f"Ray: random search of {budget} candidates, objective {objective}"
          + (f" ({train.steps} steps x {train.batch_size} images at {train.image_size} px)" if objective != "cost"
             else ""))
    for label, cfg, evaluate in ((f"{objective}", config, None),
                                 ("cost after a 0.5 s wait", SearchConfig(make_space(), "random", "cost",
                                                                          budget=budget, seed=0), waiting_evaluate)):
        per_minute = {}
        for workers in (1, 2):
            ray.init(num_cpus=workers, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
            options = {"ray": "local"} if evaluate is None else {"ray": "local", "evaluate": evaluate}
            try:
                warm = SearchConfig.from_dict({**cfg.to_dict(), "budget": workers * 2, "seed": 99})
                create_run(store, warm, f"warm-{label[:4]}-{workers}")
                run_search(store, f"warm-{label[:4]}-{workers}", **options)
                rates, seconds = [], []
                for index in range(rounds):
                    run_id = f"{label[:4]}-w{workers}-{index}"
                    create_run(store, cfg, run_id)
                    start = time.perf_counter()
                    outcome = run_search(store, run_id, **options)
                    wall = time.perf_counter() - start
                    assert outcome["status"] == "done", outcome
                    rates.append(budget / wall * 60)
                    seconds += [row["seconds"] for row in store.candidates(run_id)]
                per_minute[workers] = statistics.median(rates)
                print(f"  {label:24s} {workers} worker(s): {per_minute[workers]:7.1f} candidates/min median "
                      f"(runs {', '.join(f'{r:.1f}' for r in rates)}); one evaluation "
                      f"{statistics.median(seconds):.2f} s median in its worker")
            finally:
                ray.shutdown()
        print(f"  {label:24s} ratio 2 workers / 1 worker: {per_minute[2] / per_minute[1]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    bench_sampling(args.repeats)
    if not args.skip_ray:
        bench_ray(args.budget, args.rounds)


if __name__ == "__main__":
    main()
