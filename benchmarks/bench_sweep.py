"""Sweeps: how does the wall time of a 16-point CPU sweep scale from 1 to 2 Ray workers on this machine?

The grid: Mobile SpineNet-49XS and SpineNet-49S x input 64, 96 x batch 1, 2 x fp32, bf16 (16 points), 5 timed
passes after 1 warm-up, 1 thread per point. Each configuration gets a fresh local Ray instance (127.0.0.1, no
dashboard) with `num_cpus` = 1 or 2, so 1 or 2 tasks (each with its own latency worker process) run at once;
Ray's start-up is reported apart, not in the sweep's wall time. The same grid in the local runner (one worker
process, every point interleaved) is timed too. Medians of the per-point latency medians are printed beside the
wall times, since the 2-worker run shares 2 cores between its points (and with whatever else runs here).

    .venv/bin/python benchmarks/bench_sweep.py [--rounds 1]
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

from spinescope.analysis.sweep.grid import RunOptions, grid_points  # noqa: E402
from spinescope.spinenet.builtins import load_builtin  # noqa: E402

SPECS = ["spinenet-mobile-49xs", "spinenet-49s"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    os.environ["SPINESCOPE_HOME"] = tempfile.mkdtemp(prefix="bench-sweep-")
    points = grid_points([(name, load_builtin(name), None) for name in SPECS], [64, 96], [1, 2], ["fp32", "bf16"])
    options = RunOptions(device="cpu", iters=5, warmup=1, threads=1)
    print(f"{len(points)} points, {os.cpu_count()} CPU cores on this machine")
    walls: dict[str, list[float]] = {}
    for round_index in range(args.rounds):
        for workers in (1, 2):
            import ray

            from spinescope.analysis.sweep.ray_runner import run_on_ray

            started = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
            init_s = time.perf_counter() - started
            started = time.perf_counter()
            records, failures = run_on_ray(points, options, save=False)
            wall = time.perf_counter() - started
            ray.shutdown()
            walls.setdefault(f"ray x{workers}", []).append(wall)
            print(f"round {round_index + 1}: Ray with {workers} worker(s): {wall:6.1f} s for {len(records)} points "
                  f"({len(failures)} failed; Ray start {init_s:.1f} s apart); median point latency "
                  f"{statistics.median(r['median_ms'] for r in records):.2f} ms")
        from spinescope.analysis.sweep.local import run_local

        started = time.perf_counter()
        records, _ = run_local(points, options, save=False)
        wall = time.perf_counter() - started
        walls.setdefault("local", []).append(wall)
        print(f"round {round_index + 1}: local (one worker process): {wall:6.1f} s; median point latency "
              f"{statistics.median(r['median_ms'] for r in records):.2f} ms")
    one, two = statistics.median(walls["ray x1"]), statistics.median(walls["ray x2"])
    print(f"wall time, medians over {args.rounds} round(s): Ray 1 worker {one:.1f} s, Ray 2 workers {two:.1f} s, "
          f"speed-up x{one / two:.2f} (ideal x2.00 on 2 free cores); local runner "
          f"{statistics.median(walls['local']):.1f} s")


if __name__ == "__main__":
    main()
