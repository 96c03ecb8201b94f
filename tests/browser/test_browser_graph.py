"""The graph as a user sees it, in Debian's Chromium against a real `streamlit run` server (and the exported files
rendered by Chromium): ids on the nodes, long ResNets legible, repeats, hover on connections, the selection and
the legend in every colour mode, arrowheads outside large nodes, the first screen at 1366 x 768, and exports with
nothing clipped. Nothing here is timed (see benchmarks/bench_edit_loop.py) and nothing is written to the repository.
"""
from __future__ import annotations

import io
import math

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from spinescope.app.exports import graph_html, graph_image
from spinescope.app.graph_figure import SELECTED_COLOUR, SHAPE_ONLY_COLOUR, graph_figure
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.graph import to_graph
from page_helpers import choose, open_app, wait_until_idle

FOLD = {"width": 1366, "height": 768}
GRAPH = ".st-key-graph .js-plotly-plot"
NODE_POINTS = ".st-key-graph .scatterlayer .trace:last-child path.point"

# Every trace's points in page pixels: {name: [{x, y, r, data_x, data_y}, ...]} (r: half the drawn width).
POINTS_JS = """(selector) => {
  const gd = document.querySelector(selector);
  const out = {};
  gd.querySelectorAll('.scatterlayer .trace').forEach((group) => {
    const trace = group.__data__[0].trace;
    out[trace.name] = Array.from(group.querySelectorAll('path.point')).map((path) => {
      const box = path.getBoundingClientRect();
      const d = path.__data__;
      return {x: box.x + box.width / 2, y: box.y + box.height / 2, r: Math.max(box.width, box.height) / 2,
              w: box.width, h: box.height, data_x: d.x, data_y: d.y};
    });
  });
  return out;
}"""
# Page pixels of a data point of the figure.
TO_PIXELS_JS = """([selector, x, y]) => {
  const gd = document.querySelector(selector);
  const layout = gd._fullLayout, box = gd.querySelector('.main-svg').getBoundingClientRect();
  return [box.x + layout._size.l + layout.xaxis.d2p(x), box.y + layout._size.t + layout.yaxis.d2p(y)];
}"""
# Every text, legend and colour bar box of a plotly figure, and the canvas (the outer svg).
BOXES_JS = """(selector) => {
  const root = document.querySelector(selector);
  const canvas = root.querySelector('svg.main-svg').getBoundingClientRect();
  const items = Array.from(root.querySelectorAll('svg text, g.legend, g.colorbar')).map((el) => {
    const box = el.getBoundingClientRect();
    return {what: el.tagName + ':' + (el.textContent || '').slice(0, 40), left: box.left, right: box.right,
            top: box.top, bottom: box.bottom, width: box.width};
  }).filter((b) => b.width > 0);
  return {canvas: {left: canvas.left, right: canvas.right, top: canvas.top, bottom: canvas.bottom}, items};
}"""


def open_builtin(page: Page, name: str) -> None:
    spec = load_builtin(name)
    choose(page, "builtin_choice", spec.name)
    wait_until_idle(page)
    page.locator(".st-key-open_builtin button").first.click()
    expect(page.get_by_text(f"Opened {spec.name}.")).to_be_visible()
    wait_until_idle(page)


def points(page: Page, selector: str = GRAPH) -> dict:
    page.wait_for_timeout(300)  # plotly draws in the next frames
    return page.evaluate(POINTS_JS, selector)


def overlapping(boxes: list[dict]) -> list[tuple[str, str]]:
    """Pairs of boxes (sorted by left edge) that overlap."""
    boxes = sorted(boxes, key=lambda box: box["left"])
    return [(a["what"], b["what"]) for a, b in zip(boxes, boxes[1:])
            if b["left"] < a["right"] - 0.5 and not (b["bottom"] <= a["top"] or b["top"] >= a["bottom"])]


@pytest.fixture
def fold_page(page):
    page.set_viewport_size(FOLD)
    return page


def test_first_visit_start_here_and_the_whole_graph_above_the_fold_with_ids_on_the_nodes(fold_page, server):
    page = fold_page
    open_app(page, server)
    expect(page.locator(".st-key-start_here")).to_contain_text("Start here")
    graph = page.locator(GRAPH).bounding_box()
    assert graph["y"] >= 0 and graph["y"] + graph["height"] <= FOLD["height"], graph
    spec = load_builtin("spinenet-49")
    ids = ["stem0", "stem1"] + list(spec.block_ids)
    labels = page.locator(".st-key-graph .scatterlayer .trace:last-child .textpoint text")
    expect(labels).to_have_count(len(ids))
    assert labels.all_text_contents() == ids
    boxes = [dict(what=text, **box) for text, box in zip(ids, page.evaluate(
        "(sel) => Array.from(document.querySelectorAll(sel)).map((t) => { const b = t.getBoundingClientRect();"
        " return {left: b.left, right: b.right, top: b.top, bottom: b.bottom}; })",
        ".st-key-graph .scatterlayer .trace:last-child .textpoint text"))]
    assert not overlapping(boxes)
    for box in boxes:  # inside the viewport, so on screen without scrolling
        assert 0 <= box["top"] and box["bottom"] <= FOLD["height"]


def test_resnet_152_ids_are_legible_and_its_36_l4_blocks_stay_separate(fold_page, server):
    page = fold_page
    open_app(page, server)
    open_builtin(page, "resnet152-fpn")
    graph = to_graph(load_builtin("resnet152-fpn"), 640)
    ids = sorted(graph, key=lambda node: graph.nodes[node]["order"])
    ticks = page.locator(".st-key-graph .xaxislayer-above .xtick text")
    expect(ticks).to_have_count(len(ids))
    assert ticks.all_text_contents() == ids
    # Upright labels: neighbours' centres at least one font size apart, so the glyphs never touch.
    labels = page.evaluate("(sel) => Array.from(document.querySelectorAll(sel)).map((t) => {"
                           " const b = t.getBoundingClientRect(); return [b.left + b.width / 2,"
                           " parseFloat(getComputedStyle(t).fontSize), b.height > b.width]; })",
                           ".st-key-graph .xaxislayer-above .xtick text")
    centres = sorted(centre for centre, _, _ in labels)
    assert min(b - a for a, b in zip(centres, centres[1:])) >= max(size for _, size, _ in labels) >= 8
    nodes = points(page)["blocks"]
    level_4 = sorted((point for point, node in zip(nodes, ids) if node.startswith("c4_")), key=lambda p: p["x"])
    assert len(level_4) == 36
    gaps = [b["x"] - b["w"] / 2 - (a["x"] + a["w"] / 2) for a, b in zip(level_4, level_4[1:])]
    assert min(gaps) >= 2, gaps  # visible white between neighbours: not a bar


# The margins plotly settled on and the ones the figure set: automargin draws the figure a second time when a
# label or legend needs more room than the figure set.
MARGINS_JS = """(selector) => { const layout = document.querySelector(selector)._fullLayout;
  return [['l', 'r', 't', 'b'].map((side) => layout._size[side]), ['l', 'r', 't', 'b'].map((side) => layout.margin[side])];
}"""


@pytest.mark.parametrize("name", ["spinenet-49", "spinenet-190", "resnet152-fpn"])
def test_the_graph_is_drawn_once_its_margins_already_fit(fold_page, server, name):
    """Each margin plotly needed (tick labels, axis titles, legends; automargin) is within the one the figure set in
    advance, in Explore in both colour modes and in Edit: plotly draws an edited graph once, not twice."""
    page = fold_page
    open_app(page, server)
    if name != "spinenet-49":
        open_builtin(page, name)
    for mode in ("off", "colour"):
        page.get_by_text(MODE_BUTTONS[mode], exact=True).click()
        wait_until_idle(page)
        page.wait_for_timeout(300)
        needed, preset = page.evaluate(MARGINS_JS, GRAPH)
        assert all(need <= set_ for need, set_ in zip(needed, preset)), (mode, needed, preset)
    if name.startswith("spinenet"):
        page.get_by_role("tab", name="Edit").click()
        page.locator(".st-key-edit_graph .js-plotly-plot").wait_for()
        wait_until_idle(page)
        page.wait_for_timeout(300)
        needed, preset = page.evaluate(MARGINS_JS, ".st-key-edit_graph .js-plotly-plot")
        assert all(need <= set_ for need, set_ in zip(needed, preset)), ("edit", needed, preset)


def test_spinenet_190_draws_its_repeated_blocks_as_stacks(page, server):
    open_app(page, server)
    assert "repeated blocks" not in points(page)
    open_builtin(page, "spinenet-190")
    drawn = points(page)
    nodes = drawn["blocks"]
    assert len(drawn["repeated blocks"]) == 3 * len(nodes)
    for node in nodes:  # three copies behind each node, offset up and to the left
        behind = [p for p in drawn["repeated blocks"] if abs(p["x"] - node["x"]) < 2 * node["r"]
                  and abs(p["y"] - node["y"]) < 2 * node["r"] and (p["x"] < node["x"] and p["y"] < node["y"])]
        assert len(behind) == 3
    expect(page.locator(".st-key-graph .infolayer")).to_contain_text("×4 repeats")
    expect(page.locator(".st-key-graph .trace:last-child .textpoint text").first).to_have_text("stem0")


def test_hovering_a_connection_shows_its_resampling_and_cost(page, server):
    open_app(page, server)
    page.wait_for_timeout(500)
    spec = load_builtin("spinenet-49")
    graph = to_graph(spec, 640)
    source, target = graph.nodes["stem0"], graph.nodes["b3"]
    # The middle of the curve from stem0 to b3 (it bows up by 0.12 per order step beyond the first).
    bulge = min(0.12 * (abs(target["order"] - source["order"]) - 1), 1.2)
    x = (source["order"] + target["order"]) / 2
    y = (source["level"] + target["level"]) / 2 + bulge / 2
    px, py = page.evaluate(TO_PIXELS_JS, [GRAPH, x, y])
    page.mouse.move(px, py)
    hover = page.locator(".st-key-graph .hoverlayer .hovertext")
    expect(hover).to_contain_text("stem0 → b3")
    expect(hover).to_contain_text("max-pool 3/2")
    expect(hover).to_contain_text("resampling cost:")
    expect(hover).to_contain_text("MACs")


MODE_BUTTONS = {"off": "type colours", "size": "node size = MACs share", "colour": "node colour = MACs share"}


def test_selection_legend_and_arrowheads_in_every_colour_mode(page, server):
    open_app(page, server)
    page.locator(".st-key-graph .infolayer .traces").first.wait_for()
    choose(page, "explore_block_box", "b14")
    for mode, label in MODE_BUTTONS.items():
        page.get_by_text(label, exact=True).click()
        wait_until_idle(page)
        drawn = points(page)
        nodes = {(p["data_x"], p["data_y"]): p for p in drawn["blocks"]}
        # The ring: one shape in the selection colour, centred on b14.
        ring = page.locator(".st-key-graph .shapelayer path")
        expect(ring).to_have_count(1)
        assert ring.evaluate("(el) => getComputedStyle(el).stroke") == "rgb(231, 41, 138)"  # SELECTED_COLOUR
        box = ring.bounding_box()
        b14 = nodes[(14, 5)]
        assert math.isclose(box["x"] + box["width"] / 2, b14["x"], abs_tol=1.5)
        assert math.isclose(box["y"] + box["height"] / 2, b14["y"], abs_tol=1.5)
        assert box["width"] / 2 > b14["r"]
        # The legend: type colours, or shapes only when colour means MACs (with a colour bar).
        legend = page.evaluate("() => Array.from(document.querySelectorAll('.st-key-graph .infolayer .traces'))"
                               ".map((t) => [t.textContent, t.querySelector('path.scatterpts')?.style.fill])")
        fills = dict(legend)
        colourbar = page.locator(".st-key-graph .colorbar")
        if mode == "colour":
            assert fills["bottleneck"] == fills["residual"] == "rgb(176, 176, 176)"  # SHAPE_ONLY_COLOUR
            expect(colourbar).to_have_count(1)
            expect(page.locator(".st-key-graph .infolayer")).to_contain_text("colour = MACs")
        else:
            assert fills["bottleneck"] == "rgb(59, 111, 182)" and fills["residual"] == "rgb(232, 131, 58)"
            expect(colourbar).to_have_count(0)
        # Arrowheads: every tip lies outside its target's drawn marker, however large the node.
        tips = [p for p in drawn["arrowheads"] if p["w"] > 0.5]
        assert len(tips) == to_graph(load_builtin("spinenet-49"), 640).number_of_edges()
        for tip in tips:
            node = nodes[(tip["data_x"], tip["data_y"])]
            assert math.dist((tip["x"], tip["y"]), (node["x"], node["y"])) >= node["r"] - 0.5, (mode, tip)
    assert SELECTED_COLOUR == "#e7298a" and SHAPE_ONLY_COLOUR == "#b0b0b0"


@pytest.mark.parametrize("name", ["spinenet-190", "resnet152-fpn"])
def test_exported_html_svg_and_png_have_nothing_clipped(page, name, tmp_path):
    spec = load_builtin(name)
    size = 640
    costs = None
    for width in (1366, 800):  # the HTML page fills the window: a wide and a narrow one
        page.set_viewport_size({"width": width, "height": 700})
        page.set_content(graph_html(spec, size, costs).decode())
        page.locator("#spinescope-graph .scatterlayer .trace:last-child path.point").first.wait_for()
        assert_inside(page.evaluate(BOXES_JS, "#spinescope-graph"))
    page.set_viewport_size({"width": 900, "height": 600})  # the colour mode's colour bar and legend too
    page.set_content(graph_figure(spec, size, None, "colour", selected=spec.blocks[0].id if spec.blocks else "stem",
                                  title=f"{spec.name} at {size}px").to_html(include_plotlyjs=True,
                                                                            div_id="figure"))
    page.locator("#figure .colorbar").wait_for()
    assert_inside(page.evaluate(BOXES_JS, "#figure"))
    svg = graph_image(spec, size, "svg", width=1000, height=560)
    page.set_content(f"<html><body style='margin:0'><div id='svg'>{svg.decode()}</div></body></html>")
    assert_inside(page.evaluate(BOXES_JS, "#svg"))
    png = Image.open(io.BytesIO(graph_image(spec, size, "png", width=1000, height=560))).convert("L")
    width, height = png.size
    frame = [png.getpixel((x, y)) for x in range(width) for y in (0, 1, height - 2, height - 1)]
    frame += [png.getpixel((x, y)) for y in range(height) for x in (0, 1, width - 2, width - 1)]
    assert min(frame) >= 250  # nothing drawn up to the picture's edge


def assert_inside(found: dict) -> None:
    canvas, items = found["canvas"], found["items"]
    assert len(items) > 20
    outside = [item["what"] for item in items if item["left"] < canvas["left"] - 0.5 or
               item["right"] > canvas["right"] + 0.5 or item["top"] < canvas["top"] - 0.5 or
               item["bottom"] > canvas["bottom"] + 0.5]
    assert not outside, outside
