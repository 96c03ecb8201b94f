"""Does SpineScope's latency tool agree with torch.utils.benchmark.Timer, and what does its worker cost?

Times the same model (same spec, input size, threads, random input, inference mode, flushed denormals) with the
tool (`analysis.latency.job.LatencyJob`: a worker process per run) and with `torch.utils.benchmark.Timer` in this
process, alternating rounds (tool, Timer, tool, Timer, ...) so that both see the same machine load. Prints every
round's medians and ratio, the median of each and their ratio, the fastest pass of each (the figure least
disturbed by other processes on a shared machine), and the worker's overhead per round: memory estimate
(overlapping the process start), process start and imports, model build, warm-up, against the timed iterations.

    .venv/bin/python benchmarks/bench_latency.py [--spec spinenet-49s] [--input-size 256] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch.utils.benchmark import Timer  # noqa: E402

from spinescope.analysis.latency.job import LatencyJob  # noqa: E402
from spinescope.analysis.latency.request import LatencyRequest  # noqa: E402
from spinescope.spinenet.build import build_model  # noqa: E402
from spinescope.spinenet.builtins import load_builtin  # noqa: E402


def timer_figures_ms(model, images, threads: int, min_run_time: float) -> tuple[float, float]:
    """(median, min) ms per forward pass from Timer.blocked_autorange (a block = as many calls as fill ~10 ms)."""
    def forward():
        with torch.inference_mode():
            model(images)

    measurement = Timer(stmt="forward()", globals={"forward": forward}, num_threads=threads).blocked_autorange(
        min_run_time=min_run_time)
    return measurement.median * 1e3, min(measurement.times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="spinenet-49s")
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=15, help="timed passes per tool round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()

    spec = load_builtin(args.spec)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as the worker does on the CPU
    model = build_model(spec, "none", args.input_size)
    images = torch.randn(1, 3, args.input_size, args.input_size)
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(images)

    print(f"{spec.name} at {args.input_size} px, batch 1, fp32, CPU, {args.threads} thread(s), torch "
          f"{torch.__version__}; {args.rounds} alternating rounds")
    tool_medians, timer_medians, tool_minima, timer_minima = [], [], [], []
    for round_index in range(args.rounds):
        started = time.perf_counter()
        (result,), phases = run_latency_with_times(spec, args)
        wall = time.perf_counter() - started
        tool_medians.append(result.median_ms)
        tool_minima.append(result.min_ms)
        min_run_time = max(phases["measure_s"], 1.0)  # Timer gets as much timed run time as the tool had
        timer_median, timer_min = timer_figures_ms(model, images, args.threads, min_run_time)
        timer_medians.append(timer_median)
        timer_minima.append(timer_min)
        warmup_and_probe = phases["total_s"] - phases["start_s"] - phases["build_s"] - phases["measure_s"]
        # The memory estimate runs while the worker starts; the worker reports ready once it has the payload.
        print(f"round {round_index + 1}: tool median {tool_medians[-1]:7.2f} ms (p10 {result.p10_ms:.2f}, p90 "
              f"{result.p90_ms:.2f}, {result.iterations} passes)   Timer median {timer_median:7.2f} ms   "
              f"ratio {tool_medians[-1] / timer_median:.3f}")
        print(f"         worker call {wall:5.2f} s = timed iterations {phases['measure_s']:5.2f} s + overhead "
              f"{wall - phases['measure_s']:5.2f} s (process start and imports {phases['start_s']:.2f} with the memory "
              f"estimate {phases['estimate_s']:.2f} inside it, build {phases['build_s']:.2f}, warm-up and memory probe "
              f"{warmup_and_probe:.2f}, result handling {wall - phases['total_s']:.2f})")

    tool, timer = statistics.median(tool_medians), statistics.median(timer_medians)
    per_round = statistics.median(a / b for a, b in zip(tool_medians, timer_medians))
    fastest_tool, fastest_timer = min(tool_minima), min(timer_minima)
    print(f"median of round medians: tool {tool:.2f} ms, torch.utils.benchmark.Timer {timer:.2f} ms, ratio "
          f"tool/Timer {tool / timer:.3f} ({(tool / timer - 1) * 100:+.1f} %); median of per-round ratios "
          f"{per_round:.3f}")
    print(f"fastest pass (least disturbed by other load): tool {fastest_tool:.2f} ms, Timer {fastest_timer:.2f} ms, "
          f"ratio {fastest_tool / fastest_timer:.3f} ({(fastest_tool / fastest_timer - 1) * 100:+.1f} %)")


def run_latency_with_times(spec, args):
    """One latency job for one model (nothing stored in the history), returning (results, the job's phase times in
    seconds)."""
    job = LatencyJob([LatencyRequest(spec, args.input_size)], device="cpu", threads=args.threads, iters=args.iters,
                     warmup=args.warmup)
    job.start()
    return job.result(), job.phase_times


if __name__ == "__main__":
    main()
