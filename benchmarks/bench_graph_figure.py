"""How long the graph figure takes to build (`app.graph_figure.graph_figure`), and to serialise to the JSON that
Streamlit sends to the browser, for SpineNet-49, SpineNet-190, ResNet-152-FPN and the largest ResNet-FPN the
validator accepts (`LIMITS["max_stage_blocks"]` blocks in each of the four stages), at each paper input size.

Each figure is built --repeats times with the per-block costs the app passes (analysis computed once, outside the
timing); the script prints the median and worst build time, the median JSON time and the size of the JSON.

Usage: .venv/bin/python benchmarks/bench_graph_figure.py [--repeats 15] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spinescope.analysis.counting import analyze  # noqa: E402
from spinescope.spinenet.builtins import load_builtin  # noqa: E402
from spinescope.spinenet.validate import LIMITS, parse_spec  # noqa: E402
from spinescope.spinenet.spec import spec_to_dict  # noqa: E402


def block_costs(result) -> dict:
    """The {id: {params, macs, share, resample_params, resample_macs}} the app passes (app.counts.block_costs)."""
    total = max(result.backbone_macs, 1)
    return {block.id: {"params": block.params, "macs": block.macs, "share": block.macs / total,
                       "resample_params": block.resample_params, "resample_macs": block.resample_macs}
            for block in result.blocks}


def models():
    largest = spec_to_dict(load_builtin("resnet152-fpn"))
    largest.update(name="ResNet-FPN, largest accepted", stages=[LIMITS["max_stage_blocks"]] * 4)
    return [("SpineNet-49", load_builtin("spinenet-49"), 640), ("SpineNet-190", load_builtin("spinenet-190"), 1280),
            ("ResNet-152-FPN", load_builtin("resnet152-fpn"), 1280),
            (f"ResNet-FPN {'-'.join(map(str, largest['stages']))}", parse_spec(largest), 1280)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--only", nargs="*", help="model names (prefix match)")
    args = parser.parse_args()
    from spinescope.app.graph_figure import graph_figure

    print(f"{'model':34} {'nodes':>5} {'edges':>5} {'build median':>13} {'build worst':>12} {'to_json median':>15} "
          f"{'JSON':>9}")
    for name, spec, size in models():
        if args.only and not any(name.lower().startswith(prefix.lower()) for prefix in args.only):
            continue
        costs = block_costs(analyze(spec, size))
        graph_figure(spec, size, costs)  # imports and caches warm
        builds, dumps = [], []
        for index in range(args.repeats):
            start = time.perf_counter()
            figure = graph_figure(spec, size, costs, selected=None, macs_mode=("off", "size", "colour")[index % 3])
            built = time.perf_counter()
            text = figure.to_json()
            dumps.append(time.perf_counter() - built)
            builds.append(built - start)
        from spinescope.spinenet.graph import to_graph
        graph = to_graph(spec, size)
        print(f"{name + f' @{size}':34} {graph.number_of_nodes():5d} {graph.number_of_edges():5d} "
              f"{1000 * statistics.median(builds):10.1f} ms {1000 * max(builds):9.1f} ms "
              f"{1000 * statistics.median(dumps):12.1f} ms {len(text) / 1024:6.0f} KiB")


if __name__ == "__main__":
    main()
