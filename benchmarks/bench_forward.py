"""Eval forward speed of the model itself (CPU): SpineNet-49 backbone end to end at 384 and 640 px with 1 and 2
threads, medians over interleaved rounds, then torch.profiler's top operators for one pass.

With --against DIR it times two checkouts of the project in one run: each checkout gets its own worker process
(the model built from that checkout's code, same seed, so the same weights), and every round runs one timed batch
in each worker, in alternating order, so that the load of a shared machine falls on both alike. It prints both
medians and the ratio (this checkout / the other); a ratio below 1 means this checkout is faster.

Usage: python benchmarks/bench_forward.py [--against DIR] [--sizes 384 640] [--threads 1 2] [--rounds 7]
       [--per-round 2] [--model spinenet-49] [--head none] [--profile-size 384] [--profile-threads 1] [--top 12]

A copy of an earlier commit to compare against: `git archive COMMIT | tar -x -C /tmp/before` (no worktree needed).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs inside the checkout being timed (its own `spinenet` package): one JSON request per line on stdin, one
# JSON answer per line on stdout.
WORKER_CODE = r"""
import json, sys, time
import torch
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin

models = {}

def model_for(name, head, size):
    key = (name, head, size)
    if key not in models:
        torch.manual_seed(0)
        models[key] = build_model(load_builtin(name), head, size).eval()
    return models[key]

for line in sys.stdin:
    request = json.loads(line)
    torch.set_num_threads(request["threads"])
    model = model_for(request["model"], request["head"], request["size"])
    torch.manual_seed(1)
    images = torch.randn(1, 3, request["size"], request["size"])
    with torch.no_grad():
        if request.get("profile"):
            from torch.profiler import ProfilerActivity, profile
            model(images)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                model(images)
            table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=request["top"])
            print(json.dumps({"table": table}), flush=True)
            continue
        for _ in range(request.get("warmup", 0)):
            model(images)
        times = []
        for _ in range(request["repeats"]):
            start = time.perf_counter()
            model(images)
            times.append(time.perf_counter() - start)
    print(json.dumps({"times": times}), flush=True)
"""


class Worker:
    """A worker process running WORKER_CODE with `checkout` first on its import path."""

    def __init__(self, checkout: Path):
        self.checkout = checkout
        self.process = subprocess.Popen([sys.executable, "-c", WORKER_CODE], cwd=checkout, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        env={**_environ(), "PYTHONPATH": str(checkout)})

    def ask(self, **request) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"error: the worker for {self.checkout} stopped (see its message above)")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def _environ() -> dict:
    import os

    return dict(os.environ)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another checkout of the project to time in the same run")
    parser.add_argument("--model", default="spinenet-49")
    parser.add_argument("--head", default="none")
    parser.add_argument("--sizes", type=int, nargs="+", default=[384, 640])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=2, help="timed passes per worker per round")
    parser.add_argument("--profile-size", type=int, default=384)
    parser.add_argument("--profile-threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=12, help="operators in the profiler table (0: no profile)")
    args = parser.parse_args()

    checkouts = {"this": ROOT}
    if args.against:
        if not (args.against / "spinenet").is_dir():
            raise SystemExit(f"error: {ascii(str(args.against))} is not a checkout of the project (no spinenet/)")
        checkouts["other"] = args.against.resolve()
    workers = {label: Worker(path) for label, path in checkouts.items()}
    import torch

    print(f"torch {torch.__version__}, model {args.model}, head {args.head}, batch 1, eval, no_grad; "
          f"{args.rounds} rounds x {args.per_round} passes per checkout, order alternating each round")
    for label, path in checkouts.items():
        print(f"  {label}: {path}")
    try:
        for size in args.sizes:
            for threads in args.threads:
                request = dict(model=args.model, head=args.head, size=size, threads=threads)
                for worker in workers.values():  # build and warm up
                    worker.ask(**request, repeats=0, warmup=2)
                times = {label: [] for label in workers}
                labels = list(workers)
                for round_index in range(args.rounds):
                    order = labels if round_index % 2 == 0 else labels[::-1]
                    for label in order:
                        times[label] += workers[label].ask(**request, repeats=args.per_round)["times"]
                medians = {label: statistics.median(values) * 1e3 for label, values in times.items()}
                line = f"{size:4d} px, {threads} thread(s): " + ", ".join(
                    f"{label} median {value:8.1f} ms (min {min(times[label]) * 1e3:7.1f})"
                    for label, value in medians.items())
                if "other" in medians:
                    ratio = medians["this"] / medians["other"]
                    fastest = min(times["this"]) / min(times["other"])
                    line += (f"; ratio this/other: medians {ratio:.3f} ({100 * (ratio - 1):+.1f} %), "
                             f"fastest passes {fastest:.3f} ({100 * (fastest - 1):+.1f} %)")
                print(line, flush=True)
        if args.top:
            for label, worker in workers.items():
                table = worker.ask(model=args.model, head=args.head, size=args.profile_size,
                                   threads=args.profile_threads, profile=True, top=args.top)["table"]
                print(f"\ntorch.profiler, {label}, {args.profile_size} px, {args.profile_threads} thread(s), one pass, "
                      f"top {args.top} by self CPU time:")
                print(table)
    finally:
        for worker in workers.values():
            worker.close()


if __name__ == "__main__":
    main()
