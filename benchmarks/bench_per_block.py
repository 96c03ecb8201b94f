"""Per-block latency: do the block times add up to the end-to-end time, and what do the timing hooks cost?

Runs `latency --per-block` (a LatencyJob with per_block=True: every iteration times one pass without hooks and one
with them, interleaved across the models) for a few rounds and prints, per model and round: the end-to-end median
without hooks, the hooked passes' median and their ratio (the hooks' overhead), the sum of the per-block medians
and its difference to the end-to-end median; then the median over rounds and the slowest blocks.

    .venv/bin/python benchmarks/bench_per_block.py [--specs spinenet-49s resnet50-fpn] [--input-size 256]
        [--head retinanet] [--threads 1] [--iters 15] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spinescope.analysis.latency.job import LatencyJob  # noqa: E402
from spinescope.analysis.latency.request import LatencyRequest  # noqa: E402
from spinescope.spinenet.builtins import load_builtin  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--specs", nargs="+", default=["spinenet-49s", "resnet50-fpn"])
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--head", default="retinanet")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    requests = [LatencyRequest(load_builtin(name), args.input_size, args.head) for name in args.specs]
    rounds = []
    print(f"{'round':>5s} {'model':16s} {'e2e ms':>9s} {'hooked ms':>10s} {'hooks':>7s} {'sum blocks ms':>14s} "
          f"{'sum vs e2e':>10s}")
    for index in range(args.rounds):
        job = LatencyJob(requests, device=args.device, threads=args.threads, iters=args.iters, warmup=2,
                         per_block=True)
        results = job.start().result()
        rounds.append(results)
        for r in results:
            print(f"{index + 1:5d} {r.label[:16]:16s} {r.median_ms:9.2f} {r.hooked_median_ms:10.2f} "
                  f"{100 * r.hook_overhead:+6.1f}% {r.blocks_sum_ms:14.2f} {100 * r.blocks_sum_diff:+9.1f}%")
    first = rounds[0][0]
    print(f"\ndevice: {first.device} ({first.device_name}), {first.threads} thread(s), input {args.input_size}, "
          f"head {args.head}, {args.iters} plain + {args.iters} hooked passes per model per round, "
          f"{args.rounds} rounds")
    for position, label in enumerate(r.label for r in rounds[0]):
        per_round = [results[position] for results in rounds]
        overhead = statistics.median(r.hook_overhead for r in per_round)
        diff = statistics.median(r.blocks_sum_diff for r in per_round)
        print(f"{label}: median over rounds: e2e {statistics.median(r.median_ms for r in per_round):.2f} ms, hooked "
              f"{statistics.median(r.hooked_median_ms for r in per_round):.2f} ms (hooks {100 * overhead:+.1f} %, "
              f"target within 5 %), sum of blocks {statistics.median(r.blocks_sum_ms for r in per_round):.2f} ms "
              f"({100 * diff:+.1f} % vs e2e, target within 10 %)")
        slowest = sorted(per_round[-1].blocks, key=lambda row: -row["median_ms"])[:4]
        print("  slowest (last round): " + ", ".join(f"{row['id']} {row['median_ms']:.2f} ms "
                                                     f"({100 * row['share']:.0f} %)" for row in slowest))


if __name__ == "__main__":
    main()
