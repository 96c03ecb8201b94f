"""How long plotly takes to draw the app's graph after an edit in Debian's Chromium (Playwright): from scratch
(`Plotly.newPlot`), as `st.plotly_chart` does for every changed figure (it mounts a new chart; the app's fallback),
for the figure as `app.graph_figure` makes it (margins set in advance from its labels and legends) and for the same
figure with the 10 px margins it had before (plotly's automargin then draws it, measures, and draws it again); and
in place (`Plotly.react` on the chart already drawn), as the app's graph component does (app/graph_view.js).

All are drawn in one page with plotly.js from the plotly package and Streamlit's own font (Source Sans, from
Streamlit's static files), alternately: the figure of a spec and of the spec with b7 one level up, as an edit does.
Prints the median and worst draw time of each, the ratios of the medians to the first, and whether plotly had to
widen any margin (it should not for the figure as made).

Usage: .venv/bin/python benchmarks/bench_graph_draw.py [--draws 30] [--models spinenet-49 spinenet-190]
"""
from __future__ import annotations

import argparse
import base64
import copy
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "browser")]

import plotly  # noqa: E402
import plotly.io as pio  # noqa: E402
import streamlit  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from spinescope.analysis.counting import analyze  # noqa: E402
from spinescope.app.graph_figure import graph_figure  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from spinescope.spinenet.builtins import load_builtin  # noqa: E402
from spinescope.spinenet.edits import set_level  # noqa: E402

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
FONT = next((Path(streamlit.__file__).parent / "static" / "static" / "media").glob("SourceSansVF-Upright*.woff2"))
OLD_MARGIN = {"l": 10, "r": 10, "t": 10, "b": 10}
# As the Edit tab shows it: 380 px high, about 710 px wide at 1366 x 768, Streamlit's font and 8 px pad.
PAGE = f"""<style>@font-face {{font-family: 'Source Sans';
  src: url('data:font/woff2;base64,{base64.b64encode(FONT.read_bytes()).decode()}') format('woff2');}}</style>
<div id="graph" style="width:709px;height:380px"></div>"""
DRAW = """async ([a, b, draws, inPlace]) => {
  await document.fonts.load("12px 'Source Sans'");
  const gd = document.getElementById('graph'), times = [];
  let widened = false;
  Plotly.purge(gd);
  if (inPlace) await Plotly.newPlot(gd, JSON.parse(JSON.stringify(b)).data, JSON.parse(JSON.stringify(b)).layout);
  for (let i = 0; i < draws; i++) {
    const figure = JSON.parse(JSON.stringify(i % 2 ? b : a));
    if (!inPlace) Plotly.purge(gd);
    const start = performance.now();
    await (inPlace ? Plotly.react : Plotly.newPlot)(gd, figure.data, figure.layout, {displaylogo: false});
    times.push(performance.now() - start);
    const size = gd._fullLayout._size, margin = gd._fullLayout.margin;
    widened = widened || ['l', 'r', 't', 'b'].some((side) => size[side] > margin[side] + 0.5);
  }
  return {times, widened};
}"""


def edit_figures(name: str) -> list[dict]:
    """The Edit tab's figure JSON of built-in `name` at 640 px, and of it with b7 one level up."""
    spec = load_builtin(name)
    edited = set_level(spec, "b7", spec.block("b7").level + 1)
    figures = []
    for candidate in (spec, edited):
        result = analyze(candidate, 640)
        total = max(result.backbone_macs, 1)
        costs = {block.id: {"params": block.params, "macs": block.macs, "share": block.macs / total,
                            "resample_params": block.resample_params, "resample_macs": block.resample_macs}
                 for block in result.blocks}
        figure = json.loads(pio.to_json(graph_figure(candidate, 640, costs, selected="b7", height=380,
                                                     width_hint=600), validate=False))
        figure["layout"]["font"] = {"family": "Source Sans"}
        figure["layout"]["margin"]["pad"] = 8
        figures.append(figure)
    return figures


def with_old_margins(figure: dict) -> dict:
    old = copy.deepcopy(figure)
    old["layout"]["margin"].update(OLD_MARGIN)
    return old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=30)
    parser.add_argument("--models", nargs="*", default=["spinenet-49", "spinenet-190"])
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_content(PAGE)
        page.add_script_tag(path=str(PLOTLY_JS))
        for name in args.models:
            figures = edit_figures(name)
            runs = {"newPlot, margins set": (figures, False),
                    "newPlot, 10 px margins": ([with_old_margins(f) for f in figures], False),
                    "react in place": (figures, True)}
            results = {label: {"times": [], "widened": False} for label in runs}
            for round_index in range(4):  # alternate, so that a busy moment slows both alike
                for label, (pair, in_place) in (list(runs.items()) if round_index % 2 == 0
                                                else list(runs.items())[::-1]):
                    out = page.evaluate(DRAW, [*pair, max(2, args.draws // 4), in_place])
                    results[label]["times"] += out["times"]
                    results[label]["widened"] |= out["widened"]
            print(load_builtin(name).name)
            for label, result in results.items():
                times = result["times"]
                print(f"  {label:24} median {statistics.median(times):6.1f} ms   worst {max(times):6.1f} ms"
                      f"   (n={len(times)})   plotly widened a margin: {result['widened']}")
            first, *others = (statistics.median(results[label]["times"]) for label in runs)
            print(f"  median ratio to '{list(runs)[0]}': " + ", ".join(
                f"{label} {median / first:.2f}" for label, median in zip(list(runs)[1:], others)))
        browser.close()


if __name__ == "__main__":
    main()
