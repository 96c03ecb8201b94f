"""Fast counter vs fvcore, measured side by side in one run: every built-in at its paper input size with the
RetinaNet head.

For each model:
- fast, cold: a fresh Python process, `analyze(spec, size, "retinanet")` called once (imports timed apart);
- fast, warm: median over --repeats calls in this process with the caches emptied before each call (every call
  counts from scratch, as for a new edit in the app); fast, cached: median of repeated calls for the same spec;
- fvcore: `count_with_fvcore` (builds the real CPU model and traces it), median over --fvcore-repeats
  runs (one run for models above --single-run-gmacs, which take minutes here);
- the ratio fvcore / fast warm, and whether both gave identical numbers for every module;
- peak Python memory of one fast call (tracemalloc) and whether torch was ever imported by it.

Usage: .venv/bin/python benchmarks/bench_counting.py [--only NAME ...] [--repeats 50] [--fvcore-repeats 3]
       [--threads 1] [--skip-fvcore]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLD_CODE = """
import json, sys, time
start = time.perf_counter()
from spinescope.analysis.counting import analyze
from spinescope.spinenet.builtins import load_builtin
spec = load_builtin(sys.argv[1])
imported = time.perf_counter()
analyze(spec, int(sys.argv[2]), "retinanet")
done = time.perf_counter()
print(json.dumps({"imports_s": imported - start, "first_call_s": done - imported, "torch": "torch" in sys.modules}))
"""


def cold_run(name: str, size: int) -> dict:
    """Returns the import time and first-call time (seconds) of a fresh process."""
    result = subprocess.run([sys.executable, "-c", COLD_CODE, name, str(size)], cwd=ROOT, capture_output=True,
                            text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(result.stdout)


def fast_warm(spec, size: int, repeats: int) -> tuple[float, float, int]:
    """Returns (median uncached seconds, median cached seconds, peak traced Python bytes of one uncached call)."""
    from spinescope.analysis.architecture import receptive_field
    from spinescope.analysis.counting import fast as fast_count
    from spinescope.analysis.counting import analyze

    def clear():
        fast_count.clear_cache()
        receptive_field.receptive_fields.cache_clear()

    uncached = []
    for _ in range(repeats):
        clear()
        start = time.perf_counter()
        analyze(spec, size, "retinanet")
        uncached.append(time.perf_counter() - start)
    cached = []
    for _ in range(repeats):
        start = time.perf_counter()
        analyze(spec, size, "retinanet")
        cached.append(time.perf_counter() - start)
    clear()
    tracemalloc.start()
    analyze(spec, size, "retinanet")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(uncached), statistics.median(cached), peak


def main(argv=None) -> int:
    from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=BUILTIN_NAMES, help="built-ins to measure (default: all)")
    parser.add_argument("--repeats", type=int, default=50, help="fast-path calls per model (default 50)")
    parser.add_argument("--fvcore-repeats", type=int, default=3, help="fvcore runs per small model (default 3)")
    parser.add_argument("--single-run-gmacs", type=float, default=200.0,
                        help="models with more GMACs than this get a single fvcore run (default 200)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for fvcore's real forward pass (default 1: on a machine shared with "
                             "other work, more threads stall on each other)")
    parser.add_argument("--skip-fvcore", action="store_true", help="time the fast path only")
    args = parser.parse_args(argv)

    names = args.only or list(BUILTIN_NAMES)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; fast path: {args.repeats} calls per model "
          f"(medians); fvcore: torch threads {args.threads}", flush=True)
    header = ("| model | input | MACs | fast cold (first call) | fast warm, uncached | fast cached | fvcore | "
              "fvcore / fast warm | identical | fast peak memory |")
    rows = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    summary = []
    for name in names:
        from spinescope.analysis.counting import analyze, count_with_fvcore
        from spinescope.analysis.counting.fast import count_differences, count_model

        spec = load_builtin(name)
        size = spec.input_size
        cold = cold_run(name, size)
        warm, cached, peak = fast_warm(spec, size, args.repeats)
        macs = analyze(spec, size, "retinanet").macs
        fvcore_text, ratio_text, identical = "not run", "-", "-"
        if not args.skip_fvcore:
            import torch

            torch.set_num_threads(args.threads)
            runs = 1 if macs / 1e9 > args.single_run_gmacs else args.fvcore_repeats
            times, differences = [], []
            for _ in range(runs):
                start = time.perf_counter()
                reference = count_with_fvcore(spec, size, "retinanet")
                times.append(time.perf_counter() - start)
                differences += count_differences(count_model(spec, size, "retinanet"), reference)
                del reference
            slow = statistics.median(times)
            fvcore_text = f"{slow:.1f} s ({runs} run{'s' if runs > 1 else ''})"
            ratio_text = f"{slow / warm:,.0f}x"
            identical = "NO" if differences else "yes"
        rows.append(f"| {spec.name} | {size} | {macs / 1e9:.1f}B | {1e3 * cold['first_call_s']:.0f} ms | "
                    f"{1e3 * warm:.1f} ms | {1e3 * cached:.2f} ms | {fvcore_text} | {ratio_text} | {identical} | "
                    f"{peak / 2 ** 20:.1f} MiB |")
        summary.append((name, cold, warm))
        print(rows[-1], flush=True)
    print()
    print("\n".join(rows))
    worst_warm = max(warm for _, _, warm in summary)
    worst_cold = max(cold["first_call_s"] for _, cold, _ in summary)
    imports = statistics.median(cold["imports_s"] for _, cold, _ in summary)
    torch_imported = any(cold["torch"] for _, cold, _ in summary)
    print(f"\nslowest warm (uncached) analysis: {1e3 * worst_warm:.1f} ms (target <= 50 ms); slowest cold first call: "
          f"{1e3 * worst_cold:.0f} ms (target < 1 s; imports {1e3 * imports:.0f} ms apart); torch imported by the fast "
          f"path: {'yes' if torch_imported else 'no'} (no weights or activations exist)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
