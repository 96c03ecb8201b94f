"""What a free-size ONNX graph costs against a fixed-size one (`spinescope.export_onnx(..., dynamic=True/False)`):
the nodes in each graph and onnxruntime's inference time (CPU), medians over interleaved rounds at one size, and
the ratios free / fixed. Both graphs come from one module (same weights) traced at the same size; the outputs are
checked to agree before timing.

Usage: python benchmarks/bench_onnx.py [--model spinenet-49] [--size 256] [--rounds 9] [--per-round 3]
       [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

import spinescope  # noqa: E402


def session(model_bytes: bytes, threads: int) -> ort.InferenceSession:
    """Returns an onnxruntime CPU session for the graph, `threads` threads within and between operators."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def seconds(run, per_round: int) -> float:
    """Returns the mean wall time of one call of `run` over `per_round` calls, in seconds."""
    start = time.perf_counter()
    for _ in range(per_round):
        run()
    return (time.perf_counter() - start) / per_round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="spinenet-49")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--per-round", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(0)
    backbone = spinescope.create_backbone(args.model, args.size)
    graphs = {name: spinescope.export_onnx(backbone, input_size=args.size, dynamic=name == "free")
              for name in ("fixed", "free")}
    sessions = {name: session(data, args.threads) for name, data in graphs.items()}
    images = np.random.default_rng(0).standard_normal((1, 3, args.size, args.size), dtype=np.float32)
    outputs = {name: s.run(None, {"images": images}) for name, s in sessions.items()}
    worst = max(float(np.abs(a - b).max()) for a, b in zip(outputs["fixed"], outputs["free"]))
    times = {name: [] for name in sessions}
    for round_index in range(args.rounds):
        order = list(sessions) if round_index % 2 == 0 else list(reversed(sessions))  # load falls on both alike
        for name in order:
            times[name].append(seconds(lambda: sessions[name].run(None, {"images": images}), args.per_round))
    nodes = {name: len(onnx.load_from_string(data).graph.node) for name, data in graphs.items()}
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.model} backbone, {args.size}x{args.size} px, batch 1, onnxruntime {ort.__version__} CPU, "
          f"{args.threads} thread(s), {args.rounds} rounds x {args.per_round}, torch {torch.__version__}")
    print(f"outputs agree: largest difference {worst:.2e}")
    print(f"{'graph':6s}  {'nodes':>6s}  {'MiB':>6s}  {'median ms':>9s}")
    for name in graphs:
        print(f"{name:6s}  {nodes[name]:6d}  {len(graphs[name]) / 2**20:6.1f}  {median[name] * 1e3:9.1f}")
    print(f"free / fixed: {nodes['free'] / nodes['fixed']:.1f}x the nodes, "
          f"{median['free'] / median['fixed']:.2f}x the time")


if __name__ == "__main__":
    main()
