"""The largest specs the validator accepts, in the real app script (Streamlit's AppTest: the server-side rerun,
without the browser's drawing): seconds per rerun of the Explore tab after importing each one.

Usage: .venv/bin/python benchmarks/bench_largest_spec.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app_runs import figures  # noqa: E402  (st.plotly_chart's and the graph component's)
from spinescope.spinenet.builtins import load_builtin  # noqa: E402
from spinescope.spinenet.spec import spec_to_dict  # noqa: E402
from spinescope.spinenet.validate import LIMITS, parse_spec  # noqa: E402


def largest_spinenet() -> dict:
    """SpineNet-49's levels and parents repeated up to the block limit, with the largest repeats and scale."""
    data = spec_to_dict(load_builtin("spinenet-49"))
    base = data["blocks"]
    blocks = [dict(block) for block in base]
    for index in range(len(base), LIMITS["max_blocks"]):
        blocks.insert(len(blocks) - 5, {"id": f"x{index}", "level": 2 + index % 5, "block_fn": "bottleneck",
                                        "parents": [blocks[len(blocks) - 7]["id"], "stem1"], "is_output": False})
    data.update(name="largest SpineNet", input_size=LIMITS["max_input_size"], blocks=blocks)
    data["scaling"].update(block_repeats=LIMITS["max_block_repeats"], filter_size_scale=LIMITS["filter_size_scale"][1])
    data["head"]["width"] = data["scaling"]["endpoints_num_filters"]
    return data


def largest_resnet() -> dict:
    data = spec_to_dict(load_builtin("resnet50-fpn"))
    data.update(name="largest ResNet-FPN", input_size=LIMITS["max_input_size"],
                stages=[LIMITS["max_stage_blocks"]] * 4)
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from streamlit.testing.v1 import AppTest

    os.environ["SPINESCOPE_HOME"] = tempfile.mkdtemp()
    for data in (largest_spinenet(), largest_resnet()):
        spec = parse_spec(data)
        app = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=300)
        app.run()
        app.session_state["tab"] = "Import / export"
        app.run()
        app.file_uploader[0].upload("largest.json", json.dumps(data).encode(), "application/json")
        app.run()
        imported = [item.value for item in app.error] + [item.value for item in app.exception]
        app.session_state["tab"] = "Explore"
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            app.run()
            times.append(time.perf_counter() - start)
        errors = imported + [item.value for item in app.exception] + [item.value for item in app.error]
        shown = any(spec.name in str(item.value).replace("\\", "") for item in app.markdown)
        charts = len(figures(app))
        blocks = len(spec.blocks) * spec.scaling.block_repeats if spec.blocks else sum(spec.stages)
        print(f"{spec.name:20s} {blocks:4d} blocks at {spec.input_size} px: rerun median {statistics.median(times):.2f} s, "
              f"worst {max(times):.2f} s (n={args.repeats}); name shown: {shown}, plotly figures: {charts}; errors: {errors[:1] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
