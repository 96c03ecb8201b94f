"""The app, round three, in Debian's Chromium against a real server: Compare's MACs-vs-params labels each sit by
their own dot (the nearest dot to a label is its own), and the graph's block ids are clear of the connections,
the stacked copies, the arrowheads and the other blocks. Expected positions come from the counting library and
assets/published.json, converted to pixels by the drawn axes; nothing is read back from the figure's own labels."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from playwright.sync_api import expect

from spinescope.analysis.counting import analyze
from spinescope.app.workspace import WORKSPACE_FILE, WorkspaceStore
from spinescope.spinenet.builtins import load_builtin
from page_helpers import assert_no_traceback, open_app, open_tab, overlapping, wait_until_idle

PUBLISHED = json.loads((Path(__file__).resolve().parents[2] / "assets" / "published.json").read_text())["models"]
FOLD = {"width": 1366, "height": 768}
CLEARLY_NEARER = 4  # pixels

# The chart's labels (annotations and point texts) and dots in page pixels, and a data point's page pixels.
SCATTER_JS = """([key, points]) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  if (!gd || !gd._fullLayout || !gd.querySelector('path.point')) return null;
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom, e.textContent]; };
  const layout = gd._fullLayout, svg = gd.querySelector('.main-svg').getBoundingClientRect();
  const pixel = ([x, y]) => [svg.x + layout._size.l + layout.xaxis.d2p(x),
                             svg.y + layout._size.t + layout.yaxis.d2p(y)];
  return {labels: [...gd.querySelectorAll('.annotation-text, .textpoint text')].filter(e => e.textContent).map(box),
          dots: [...gd.querySelectorAll('.scatterlayer path.point')].map(e => {
            const r = e.getBoundingClientRect(); return [(r.left + r.right) / 2, (r.top + r.bottom) / 2]; }),
          expected: points.map(pixel), canvas: box(gd.querySelector('.main-svg'))};
}"""


def box_distance(x: float, y: float, box) -> float:
    return math.hypot(max(box[0] - x, 0, x - box[2]), max(box[1] - y, 0, y - box[3]))


def expected_labels(names: list[str], size: int) -> list[tuple[str, tuple[float, float]]]:
    """(label start, data point) of every dot that should carry a label: the measured specs (name, and the
    published AP where the built-in is published at that size) and every published model not measured here at its
    published size (name, input size where a model has several points, AP)."""
    labels = []
    for name in names:
        result = analyze(load_builtin(name), size, "retinanet")
        row = next((row for row in PUBLISHED if row["builtin"] == name and row["input_size"] == size), None)
        labels.append((load_builtin(name).name + (f" (AP {row['ap']})" if row else ""),
                       (result.params / 1e6, result.macs / 1e9)))
    for row in PUBLISHED:
        if row["builtin"] in names and row["input_size"] == size:
            continue
        several = sum(other["builtin"] == row["builtin"] for other in PUBLISHED) > 1
        ap = f"AP {row['ap']}" if row["ap"] is not None else f"AP {row['ap_protocol_c']}, protocol C"
        labels.append((load_builtin(row["builtin"]).name + (f" @{row['input_size']}" if several else "")
                       + f" ({ap})", (row["params_m"], row["macs_b"])))
    return labels


@pytest.mark.parametrize("viewport", [FOLD, {"width": 1500, "height": 1000}])
def test_compare_labels_sit_by_their_own_dots(page, server, viewport):
    page.set_viewport_size(viewport)
    open_app(page, server)
    open_tab(page, "Compare")  # SpineNet-49 beside ResNet-50-FPN at 640 px
    wait_until_idle(page)
    page.locator(".st-key-compare_scatter").scroll_into_view_if_needed()
    expected = expected_labels(["spinenet-49", "resnet50-fpn"], 640)
    arg = ["compare_scatter", [point for _, point in expected]]
    shown = page.wait_for_function(SCATTER_JS, arg=arg).json_value()
    for _ in range(20):  # until the chart has its final size (a first drawing may come before the page's layout)
        page.wait_for_timeout(500)
        again = page.wait_for_function(SCATTER_JS, arg=arg).json_value()
        if again == shown:
            break
        shown = again
    labels = shown["labels"]
    assert overlapping(labels) == []
    left, top, right, bottom, _ = shown["canvas"]
    assert [text for x0, y0, x1, y1, text in labels if x0 < left or x1 > right or y0 < top or y1 > bottom] == []
    misplaced = []
    for (text, _), (x, y) in zip(expected, shown["expected"]):
        found = [label for label in labels if label[4] == text]
        assert len(found) == 1, (text, [label[4] for label in labels])
        label = found[0]
        own = box_distance(x, y, label)
        # Every other dot (those drawn at the same place aside) is farther from the label than its own dot, by
        # a few pixels: a label is never about as close to another dot (as SpineNet-49's was under ResNet's).
        closer = [(round(dx), round(dy)) for dx, dy in shown["dots"] if math.hypot(dx - x, dy - y) > 3
                  and box_distance(dx, dy, label) < own + CLEARLY_NEARER]
        if closer:
            misplaced.append((text, round(own, 1), closer))
    assert misplaced == []
    assert_no_traceback(page)


# The node trace's block ids and, in page pixels, everything else drawn: the connections (sampled every 1.5 px
# along their paths), the arrowheads, the stacked copies and the blocks.
GRAPH_JS = """() => {
  const gd = document.querySelector('.st-key-graph .js-plotly-plot');
  const groups = [...gd.querySelectorAll('.scatterlayer .trace')];
  const rect = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const nodes = groups[groups.length - 1];
  const out = {labels: [...nodes.querySelectorAll('.textpoint text')].map(e => [...rect(e), e.textContent]),
               halos: [...nodes.querySelectorAll('.textpoint text')].map(e => getComputedStyle(e).textShadow),
               lines: [], marks: []};
  for (const group of groups) {
    const trace = group.__data__[0].trace;
    if (trace.mode === 'lines') {
      group.querySelectorAll('path.js-line').forEach(path => {
        const m = path.getScreenCTM(), length = path.getTotalLength();
        for (let at = 0; at <= length; at += 1.5) {
          const p = path.getPointAtLength(at);
          out.lines.push([trace.name, m.a * p.x + m.c * p.y + m.e, m.b * p.x + m.d * p.y + m.f]);
        }
      });
    } else if (['arrowheads', 'repeated blocks', 'blocks'].includes(trace.name)) {
      group.querySelectorAll('path.point').forEach((point, index) => {
        const r = rect(point);
        if (r[2] > r[0]) out.marks.push([trace.name, index, ...r]);
      });
    }
  }
  return out;
}"""


@pytest.mark.parametrize("name", ["spinenet-49", "spinenet-190"])
def test_block_ids_are_clear_of_connections_and_other_blocks(page, server, name):
    """No connection passes through a block id and no arrowhead or other block covers one (the ids b15 and b9
    were crossed by their connections); every id has a white halo. SpineNet-49: no id is on a stacked copy either
    (it has none); SpineNet-190 (every block a stack of 4) may put an id over a pale copy where every side of a
    block has a connection or a copy, drawn below the id (the halo keeps it readable)."""
    page.set_viewport_size(FOLD)
    spec = load_builtin(name)
    open_app(page, server, WorkspaceStore(server.home / WORKSPACE_FILE).create(spec, "test"))
    expect(page.locator(".st-key-graph .scatterlayer .trace:last-child path.point")).to_have_count(
        2 + len(spec.blocks))
    page.wait_for_timeout(500)
    drawn = page.evaluate(GRAPH_JS)
    labels = drawn["labels"]
    assert [label[4] for label in labels] == ["stem0", "stem1"] + list(spec.block_ids)
    crossed = set()
    for left, top, right, bottom, text in labels:
        inner = (left + 1, top + 3, right - 1, bottom - 3)  # the glyphs, without the line's leading
        for trace, x, y in drawn["lines"]:
            if inner[0] <= x <= inner[2] and inner[1] <= y <= inner[3]:
                crossed.add((text, trace))
        own = labels.index([left, top, right, bottom, text])
        for trace, index, x0, y0, x1, y1 in drawn["marks"]:
            if (trace == "blocks" and index == own) or trace == "repeated blocks":
                continue
            if x0 < inner[2] and inner[0] < x1 and y0 < inner[3] and inner[1] < y1:
                crossed.add((text, f"{trace} {index}"))
    assert sorted(crossed) == [], sorted(crossed)
    assert all("rgb(255, 255, 255)" in halo for halo in drawn["halos"]), drawn["halos"]
    assert_no_traceback(page)
