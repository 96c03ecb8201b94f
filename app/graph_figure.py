"""The architecture graph as a plotly figure: x = block order, y = feature level, as in the paper's figures.

Nodes are coloured (and shaped) by block type and carry their block id; output blocks are labelled P3..P7; each
connection is a line coloured by its resampling (same level, up xN, down xN) ending in an arrowhead at the border
of its target; connections added by the 0-outdegree rule are dashed. Hovering a connection shows its resampling and
what it costs. Optionally the MACs share of each block, or its share of the time measured per block
(`analysis.latency.block_shares`), sets the node size or colour. When SpineNet's blocks are
repeated (`scaling.block_repeats`), every node is drawn as a stack of that many blocks. A dead block (one whose
output reaches no output level, e.g. the Model Garden's 16th block with min level 3) is hollow, with the reason in
its hover and a legend entry; `feeds_text` and `dead_blocks` give Explore, Edit and the hover the same words.
Block ids sit on the side of their block that no connection, block or stacked copy crosses (when one is free),
with a white halo.

The figure is built from a handful of traces whatever the size of the graph (one line trace per kind of
connection, one arrowhead trace, one node trace, a few text and legend traces) and a single shape for the
selection, so building it takes milliseconds. No Streamlit here: the same figure is shown in the app and exported
as HTML, PNG or SVG.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass

import plotly.graph_objects as go

from spinescope.analysis.counting.view import model_view
from spinescope.spinenet.graph import to_graph
from spinescope.spinenet.input_size import InputSize, hw, level_label
from spinescope.spinenet.layout import Layout
from spinescope.spinenet.layout import dead_blocks as layout_dead_blocks
from spinescope.spinenet.registry import NO_HEAD
from spinescope.spinenet.spec import Spec

TYPE_STYLE = {  # block_fn -> (colour, marker symbol, legend label)
    "bottleneck": ("#3b6fb6", "circle", "bottleneck"),
    "residual": ("#e8833a", "square", "residual"),
    "mbconv": ("#3a9a5b", "diamond", "MBConv"),
    "conv": ("#8c8c8c", "hexagon", "stem conv"),
    "fpn": ("#8e5ea2", "hexagon", "FPN level"),
}
STEM_COLOUR = "#9a9a9a"
SAME_COLOUR = "#9a9a9a"
DOWN_COLOURS = ("#f4a259", "#e0672b", "#b8401b", "#7a2410")  # x2, x4, x8, x16+
UP_COLOURS = ("#7fb3d5", "#3f88c5", "#1d5c99", "#0b3461")
MERGE_COLOUR = "#7b3fa0"
SELECTED_COLOUR = "#e7298a"  # magenta: in no type colour and not in the Viridis scale of the MACs colour mode
DEAD_COLOUR = "#9a9a9a"  # dead blocks (reach no output): hollow, in this grey where colour means type
DEAD_LABEL = "dead: reaches no output"
SHAPE_ONLY_COLOUR = "#b0b0b0"  # legend markers in the MACs colour mode, where colour means MACs, not type
MACS_MODES = ("off", "size", "colour", "time_size", "time_colour")
TIME_MODES = ("time_size", "time_colour")  # the share comes from a per-block latency run, not from the MACs
BASE_SIZE = 18
MIN_SIZE = 6
NODE_TRACE_NAME = "blocks"
ARROW_TRACE_NAME = "arrowheads"
CONNECTION_HOVER_NAME = "connection hover"  # invisible markers at the connections' middles
REPEAT_TRACE_NAME = "repeated blocks"
WIDTH_HINT = 560  # expected plot width in pixels (the Explore tab at 1366 x 768); sets node and label sizes
LABEL_FONT = 10
# A white halo around the block ids, so that a connection passing behind one never hides it.
LABEL_HALO = "0 0 2px #ffffff, 0 0 2px #ffffff, 0 0 3px #ffffff"
LABEL_SIDES = ("bottom center", "top center", "bottom right", "top right", "bottom left", "top left", "middle right",
               "middle left")  # where a block's id may go, tried in this order
CHAR_WIDTH = 0.56 * LABEL_FONT  # average width of a label character in pixels (ids are mostly digits)
BLOCK_LEGEND_TITLES = {"off": "blocks:", "size": "blocks (area = MACs):", "colour": "blocks (colour = MACs):",
                       "time_size": "blocks (area = time):", "time_colour": "blocks (colour = time):"}
COLOUR_BAR_TITLES = {"colour": "MACs share", "time_colour": "time share"}
MAX_STACK = 4  # at most this many stacked copies drawn per node
# Text metrics of the app's font (Streamlit's Source Sans) for the margins set in advance (see `_margins`).
TEXT_WIDTH = 0.42  # average character width / font size
LEGEND_FONT = 11
UPRIGHT_TEXT_WIDTH = 0.55  # the same for block ids turned upright (letters and underscores: wider)
LEGEND_ITEM_PX = 36  # a legend item's symbol and gaps, besides its text
LEGEND_ROW_PX = 19
Y_TITLE_PX = 51  # left of the y tick labels: the axis title's line, the gaps around it and Streamlit's 8 px pad
X_TITLE_PX = 47  # below the x tick labels, likewise
TICK_LINE_PX = 13  # one line of 10 px tick labels
RIGHT_PX = 14  # the last x tick label's half
MARGIN_SLACK_PX = 3
# Marker traces keep their opacity when a click selects a point (plotly dims the unselected ones otherwise).
_ALWAYS_OPAQUE = dict(selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=1.0)))


def edge_colour(direction: str, factor: int, merge: bool = False) -> str:
    """Returns the colour of a connection by its resampling direction and factor."""
    if merge:
        return MERGE_COLOUR
    if direction == "same":
        return SAME_COLOUR
    shades = DOWN_COLOURS if direction == "down" else UP_COLOURS
    return shades[min(int(math.log2(max(factor, 2))) - 1, len(shades) - 1)]


def _format_count(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}{unit}"
    return f"{value:.0f}{unit}"


def feeds_text(layout: Layout, node_id: str) -> str:
    """Returns what a block's output feeds, in words (plain text: escape it for Markdown or HTML): the blocks
    that read it ('b14, b15 (0-outdegree merge)'), then its output level ('the P3 output'), or 'nothing' (a dead
    block: `dead_blocks` says why). Explore, Edit and the graph's hover all say it this way."""
    if node_id in layout.dropped:  # Model Garden semantics: a dead block is not built
        return "nothing (not built: Model Garden semantics drops blocks that reach no output)"
    targets = [edge.target + (" (0-outdegree merge)" if edge.kind == "merge" else "")
               for edge in layout.edges if edge.source == node_id]
    stems = [node.id for node in layout.stems]
    if node_id in stems[:-1]:  # a stem feeds the next one directly
        targets.insert(0, stems[stems.index(node_id) + 1])
    node = layout.node(node_id)
    if node.output_level is not None:
        targets.append(f"the P{node.output_level} output")
    return ", ".join(targets) or "nothing"


def dead_blocks(layout: Layout) -> dict[str, str]:
    """Returns {block id: why it is dead} for every block whose output reaches no output level, in build order,
    e.g. {'b17': 'b17 feeds no block and is not an output'} (plain text; `spinenet.layout.dead_blocks`). Under the
    reference semantics a dead block is built and run and its params count, but nothing uses its result: fvcore's
    trace drops it, so it counts 0 MACs. Under Model Garden semantics it is not built (`layout.dropped`)."""
    return layout_dead_blocks(layout)


def dead_blocks_note(layout: Layout) -> str | None:
    """Returns one line naming the dead blocks and why (plain text), or None when every block reaches an output."""
    reasons = dead_blocks(layout)
    if not reasons:
        return None
    if layout.dropped:
        return (f"Dead block{'s' if len(reasons) > 1 else ''}, not built (Model Garden semantics drops what reaches "
                "no output, so they are not in the graph and count nothing): " + "; ".join(reasons.values()) + ".")
    return (f"Dead block{'s' if len(reasons) > 1 else ''} (hollow grey in the graph): " + "; ".join(reasons.values())
            + ". A dead block reaches no output: it is built and its params count, but nothing uses its result, "
              "so it counts 0 MACs.")


def _curve(x0, y0, x1, y1):
    """Points of a quadratic curve from (x0, y0) to (x1, y1) bowing upwards with the horizontal distance, so
    long connections along one level do not run through the blocks between their ends (4 segments when short,
    10 when long)."""
    bulge = 0.0 if abs(x1 - x0) <= 1 else min(0.12 * (abs(x1 - x0) - 1), 1.2)
    samples = 4 if bulge == 0.0 else 10
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + bulge
    points = []
    for i in range(samples + 1):
        t = i / samples
        points.append(((1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t * t * x1,
                       (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t * t * y1))
    return points


def edge_costs(spec: Spec, input_size: InputSize | None = None, head: str = NO_HEAD) -> dict[tuple[str, str], dict]:
    """Returns {(source, target): {"params", "macs"}} for every connection that has modules of its own: a
    SpineNet parent's resampling (`blocks.<target>.resample.<i>`) or an FPN lateral 1x1 conv; counted by the
    fast exact counter (the same numbers as fvcore's trace of the real model). Read from the model view of
    (spec, size, head), the one the totals beside the graph come from; the backbone's modules are the same with
    any head."""
    view = model_view(spec, input_size, head)
    counts, layout = view.counts, view.layout
    costs: dict[tuple[str, str], dict] = {}

    def add(key, module):
        if module in counts.params:
            entry = costs.setdefault(key, {"params": 0, "macs": 0})
            entry["params"] += counts.params[module]
            entry["macs"] += counts.macs(module)

    for node in layout.nodes:
        parents = [edge for edge in layout.edges_into(node.id) if edge.kind == "parent"]
        for index, edge in enumerate(parents):
            add((edge.source, edge.target), f"backbone.blocks.{node.id}.resample.{index}")
        for edge in layout.edges_into(node.id):
            if edge.kind == "lateral":
                add((edge.source, edge.target), f"backbone.blocks.{node.id}.lateral")
    return costs


def _resample_steps(edge: dict) -> str:
    """Returns the resampling operations of one connection in words."""
    steps = []
    if edge["kind"] == "lateral":
        steps.append("1×1 lateral conv")
    if edge["kind"] == "sequential" and edge["direction"] == "down":
        steps.append("stride 2 inside the block")
    if edge["stride2_conv"]:
        steps.append("stride-2 3×3 conv")
    if edge["depthwise_convs"]:
        steps.append(f"{edge['depthwise_convs']} stride-2 depthwise conv{'s' if edge['depthwise_convs'] > 1 else ''}")
    if edge["pool_kernel"]:
        steps.append(f"max-pool {_wxh(edge['pool_kernel'])}/{_wxh(edge['pool_stride'])}")
    if edge["scale"] and edge["scale"] != 1:
        steps.append(f"nearest upsample ×{_wxh(edge['scale'])}")
    if edge["resize"]:
        steps.append(f"nearest resize to {_wxh(edge['target_size'])} px")
    return ", ".join(steps) or "none"


def _wxh(value) -> str:
    """A size, kernel, stride or scale for display: "40" when both axes agree, else width×height ("167×100")."""
    return str(value) if isinstance(value, int) else f"{value[1]}×{value[0]}"


def _edge_hover(source: str, target: str, edge: dict, cost: dict | None) -> str:
    label = "0-outdegree merge" if edge["merge"] else edge["resample"]
    lines = [f"<b>{html.escape(source)} → {html.escape(target)}</b> ({label})",
             f"{_wxh(edge['source_size'])} → {_wxh(edge['target_size'])} px: {_resample_steps(edge)}"]
    if cost is not None:
        lines.append(f"resampling cost: {_format_count(cost['macs'])} MACs, {_format_count(cost['params'])} params")
    elif edge["kind"] in ("top_down", "merge"):
        lines.append("resampling cost: 0 MACs (added, no convolution)")
    return "<br>".join(lines)


def _node_style(data: dict) -> tuple[str, str, str]:
    """Returns (colour, symbol, legend label) of a node by its type and role."""
    if data["role"] == "fpn":
        return TYPE_STYLE["fpn"]
    style = TYPE_STYLE.get(data["block_fn"], TYPE_STYLE["conv"])
    return (STEM_COLOUR, style[1], "stem") if data["role"] == "stem" else style


@dataclass
class _NodeSizes:
    """How large the nodes are drawn: `spacing` (pixels between consecutive blocks), `full` (a node's marker size
    without a size mode), `of` (node id -> marker size), the `shares` that set size or colour and their maximum,
    and whether the block ids fit beside the nodes (else they label the x axis)."""

    spacing: float
    full: float
    of: dict[str, float]
    shares: list[float]
    max_share: float
    ids_beside_nodes: bool


@dataclass
class _Connections:
    """The connections' traces (one line trace per resampling category, the invisible hover markers, the
    arrowheads), their legend labels and every connection's points (for placing the block ids)."""

    lines: list[dict]
    hover: dict
    arrows: dict
    labels: list[str]
    polylines: list[list[tuple[float, float]]]


def graph_figure(spec: Spec, input_size: InputSize | None = None, costs: dict | None = None, macs_mode: str = "off",
                 selected: str | None = None, height: int = 520, title: str | None = None,
                 width_hint: int = WIDTH_HINT, times: dict | None = None, legend: bool = True,
                 head: str = NO_HEAD) -> go.Figure:
    """Returns the plotly figure of `spec`'s backbone at `input_size` pixels.

    costs: optional {node id: {"params": int, "macs": int, "resample_macs": int | None, "share": float}} shown in
    the hover text and used by `macs_mode` ('off', 'size': node area by MACs share, 'colour': node colour by it).
    times: optional {node id: {"median_ms": float, "share": float (0..1)}} from a per-block latency run, shown in
    the hover text and used by the modes 'time_size' and 'time_colour' (which fall back to 'off' without it).
    width_hint: the plot's expected width in pixels; node sizes, whether block ids fit beside the nodes (else
    they label the x axis) and the margins follow from it.
    legend: False leaves out both legends (small multiples such as Compare's).
    head: the head the page counts with, so that the graph reads the same model view as the totals beside it.
    The node trace is named NODE_TRACE_NAME, is the last trace (drawn on top) and carries each node's id as
    customdata[0] (for click selection); it is the only trace with customdata.
    """
    view = model_view(spec, input_size, head)
    graph = to_graph(spec, view.input_size, view.layout)
    size = graph.graph["input_size"]
    costs, times = costs or {}, times or {}
    macs_mode = _effective_mode(macs_mode, times)
    dead = dead_blocks(view.layout)
    nodes = sorted(graph.nodes(data=True), key=lambda item: item[1]["order"])
    repeats = spec.scaling.block_repeats  # 1 for families without repeats (ResNet-FPN)
    sizes = _node_sizes(nodes, times if macs_mode in TIME_MODES else costs, macs_mode, width_hint)
    connections = _connection_traces(graph, edge_costs(spec, size, head), sizes)
    ghosts = _stack_copies(nodes, sizes, repeats)
    outputs = _output_labels(nodes, sizes)
    node_trace = _node_trace(graph, nodes, sizes, macs_mode, selected, dead, costs, times, repeats)
    # Legend-only traces first (they draw nothing) and the nodes last, on top: the node trace's group is then the
    # last `.trace` of plotly's scatter layer, which is how a page (or a test) finds the nodes.
    legend_traces: list[dict] = []
    if legend:
        _legend(legend_traces, nodes, macs_mode, repeats, selected is not None and selected in graph, bool(dead))
    traces = [*legend_traces, *connections.lines, connections.hover]
    if ghosts:
        traces.append(_stack_trace(nodes, sizes, repeats))
    if outputs:
        traces.append(_output_label_trace(outputs))
    traces += [connections.arrows, node_trace]
    levels = sorted({data["level"] for _, data in nodes})
    y_labels = [f"L{level} · {level_label(size, level)}px" for level in levels]
    height_px, width_px = hw(size)  # a non-square map is labelled width x height, as input sizes are: say so
    y_title = "feature level (size at input)" if height_px == width_px else "feature level (W×H at input)"
    x_axis = _x_axis(nodes, sizes.ids_beside_nodes, sizes.spacing)
    colour_mode = macs_mode in ("colour", "time_colour")
    margin = _margins(y_labels, x_axis, connections.labels if legend else None,
                      [trace["name"] for trace in legend_traces] if legend else None, BLOCK_LEGEND_TITLES[macs_mode],
                      bool(title or colour_mode), width_hint)
    y_range = [min(levels) - 0.6, max(levels) + 0.75]
    if sizes.ids_beside_nodes:
        plot = (width_hint, max(height - margin["t"] - margin["b"], 50))
        node_trace["textposition"] = _label_sides(nodes, sizes.of, connections.polylines, ghosts, outputs,
                                                  x_axis["range"], y_range, plot)
    layout = _figure_layout(height, margin, legend, title, macs_mode, x_axis, levels, y_labels, y_title, y_range,
                            _selection_ring(graph, sizes, selected))
    return go.Figure(dict(data=traces, layout=layout))


def _effective_mode(macs_mode: str, times: dict) -> str:
    """Returns the mode drawn: 'off' for an unknown mode, and for a time mode without times."""
    if macs_mode not in MACS_MODES or (macs_mode in TIME_MODES and not times):
        return "off"
    return macs_mode


def _node_sizes(nodes, source: dict, macs_mode: str, width_hint: int) -> _NodeSizes:
    """Returns the nodes' sizes: as large as the spacing of the blocks allows, so long chains stay separate dots;
    in a size mode, the area follows each node's share in `source` (costs or times)."""
    spacing = width_hint / max(len(nodes), 1)
    full = max(MIN_SIZE, min(BASE_SIZE, 0.7 * spacing))
    shares = [source.get(node, {}).get("share") or 0.0 for node, _ in nodes]
    max_share = max(shares + [1e-12])
    if macs_mode in ("size", "time_size"):
        sizes = [max(MIN_SIZE, full * (0.55 + 1.6 * math.sqrt(share / max_share)) / 1.3) for share in shares]
    else:
        sizes = [full] * len(nodes)
    longest_id = max((len(node) for node, _ in nodes), default=1)
    return _NodeSizes(spacing, full, {node: s for (node, _), s in zip(nodes, sizes)}, shares, max_share,
                      spacing >= CHAR_WIDTH * longest_id + 2)


def _connection_label(data: dict) -> str:
    """Returns the legend label of a connection: '0-outdegree merge', 'same level', 'down x2', 'up x4', ..."""
    if data["merge"]:
        return "0-outdegree merge"
    return "same level" if data["direction"] == "same" else data["resample"]


def _connection_traces(graph, costs: dict, sizes: _NodeSizes) -> _Connections:
    """One line trace per kind of connection (no hover of their own, so a click near a node always reaches the
    node), one invisible marker at the middle of each connection that carries its hover text, and the arrowheads."""
    positions = {node: (data["order"], data["level"]) for node, data in graph.nodes(data=True)}
    categories: dict[tuple[str, bool], dict] = {}
    middles, texts, arrows, polylines = [], [], {"x": [], "y": [], "color": [], "size": [], "standoff": []}, []
    head = max(7.0, min(10.0, 0.55 * sizes.full))
    for source, target, data in graph.edges(data=True):
        colour = edge_colour(data["direction"], data["factor"], data["merge"])
        entry = categories.setdefault((_connection_label(data), data["merge"]), {
            "x": [], "y": [], "colour": colour,
            "sort": (data["merge"], data["direction"] != "same", data["direction"], data["factor"])})
        points = _curve(*positions[source], *positions[target])
        polylines.append(points)
        entry["x"] += [x for x, _ in points] + [None]
        entry["y"] += [y for _, y in points] + [None]
        middles.append(points[len(points) // 2])
        texts.append(_edge_hover(source, target, data, costs.get((source, target))))
        # Arrowhead: a marker at the target's centre, turned along the curve's last segment and moved back
        # (standoff, pixels) to the target's border, so a large node never hides it.
        arrows["x"] += [points[-2][0], points[-1][0]]
        arrows["y"] += [points[-2][1], points[-1][1]]
        arrows["color"] += [colour, colour]
        arrows["size"] += [0, head]
        arrows["standoff"] += [0, sizes.of[target] / 2 + 1.5]
    lines = [dict(type="scatter",
                  x=entry["x"], y=entry["y"], mode="lines", name=label, legend="legend", hoverinfo="skip",
                  line=dict(color=entry["colour"], width=1.6 if not merge else 2.0, dash="dash" if merge else "solid"),
                  opacity=0.85)
             for (label, merge), entry in sorted(categories.items(), key=lambda item: item[1]["sort"])]
    hover = dict(type="scatter",
                 x=[x for x, _ in middles], y=[y for _, y in middles], mode="markers", name=CONNECTION_HOVER_NAME,
                 showlegend=False, hovertext=texts, hoverinfo="text", marker=dict(size=14, color="rgba(0,0,0,0)"),
                 **_ALWAYS_OPAQUE)
    arrow_trace = dict(type="scatter",
                       x=arrows["x"], y=arrows["y"], mode="markers", name=ARROW_TRACE_NAME, showlegend=False,
                       hoverinfo="skip",
                       marker=dict(symbol="arrow", angleref="previous", size=arrows["size"],
                                   standoff=arrows["standoff"], color=arrows["color"], line=dict(width=0),
                                   opacity=1.0),
                       **_ALWAYS_OPAQUE)
    return _Connections(lines, hover, arrow_trace, [label for label, _ in categories], polylines)


def _stack_copies(nodes, sizes: _NodeSizes, repeats: int) -> list[tuple[float, float, float]]:
    """Returns (x, y, marker size) of every stacked copy drawn behind the nodes of repeated blocks (up to
    MAX_STACK copies per node; none without repeats), farthest first."""
    return [(data["order"] - copy * 0.09, data["level"] + copy * 0.06, sizes.of[node])
            for copy in range(min(repeats, MAX_STACK) - 1, 0, -1) for node, data in nodes]


def _stack_trace(nodes, sizes: _NodeSizes, repeats: int) -> dict:
    """Returns the trace of the stacked copies (`_stack_copies`), in their nodes' shapes."""
    copies = _stack_copies(nodes, sizes, repeats)
    symbols = [_node_style(data)[1] for _ in range(min(repeats, MAX_STACK) - 1) for _, data in nodes]
    return dict(type="scatter",
                x=[x for x, _, _ in copies], y=[y for _, y, _ in copies], mode="markers", name=REPEAT_TRACE_NAME,
                showlegend=False, hoverinfo="skip",
                marker=dict(color="#f2f2f2", symbol=symbols, size=[s for _, _, s in copies],
                            line=dict(color="#7a7a7a", width=1)),
                **_ALWAYS_OPAQUE)


def _output_labels(nodes, sizes: _NodeSizes) -> list[tuple[float, float, int]]:
    """Returns (x, y, output level) of the P-labels right of output blocks (where the fewest arrows arrive); an
    FPN node named after its level gets none."""
    return [(data["order"] + (sizes.of[node] / 2 + 2) / sizes.spacing, data["level"], data["output_level"])
            for node, data in nodes if data["output_level"] is not None and node != f"P{data['output_level']}"]


def _output_label_trace(outputs: list[tuple[float, float, int]]) -> dict:
    return dict(type="scatter",
                x=[x for x, _, _ in outputs], y=[y for _, y, _ in outputs], mode="text", name="outputs",
                showlegend=False, hoverinfo="skip", text=[f"<b>P{level}</b>" for _, _, level in outputs],
                textposition="middle right", textfont=dict(size=12, color="#222222"))


def _node_trace(graph, nodes, sizes: _NodeSizes, macs_mode: str, selected: str | None, dead: dict, costs: dict,
                times: dict, repeats: int) -> dict:
    """Returns the node trace: each node in its type's colour and shape (or coloured by its share in a colour
    mode), hollow when dead, outlined when an output or selected, with its id beside it and its hover text."""
    colour_mode = macs_mode in ("colour", "time_colour")
    colours, symbols, texts, text_colours, outlines, widths = [], [], [], [], [], []
    for (node, data), share in zip(nodes, sizes.shares):
        colour, symbol, _ = _node_style(data)
        # A dead block is hollow (its type's shape, open), grey where colour means the type.
        colours.append(share if colour_mode else DEAD_COLOUR if node in dead else colour)
        symbols.append(symbol + "-open" if node in dead else symbol)
        label = html.escape(node)
        texts.append((f"<b>{label}</b>" if node == selected else label) if sizes.ids_beside_nodes else "")
        text_colours.append("#777777" if node in dead else "#333333")
        outlines.append("#222222" if data["output_level"] is not None or node == selected else "white")
        widths.append(2.5 if node == selected else 2.0 if node in dead else 1.5)
    colour_scale = {"colorscale": "Viridis", "cmin": 0, "cmax": sizes.max_share,
                    "colorbar": dict(title=dict(text=COLOUR_BAR_TITLES.get(macs_mode), side="right"),
                                     tickformat=".0%", thickness=10, nticks=4, tickangle=0, orientation="h",
                                     len=0.25, x=1.0, xanchor="right", y=1.0, yanchor="top", yref="container",
                                     ypad=6, tickfont=dict(size=10))}
    return dict(type="scatter",
        x=[data["order"] for _, data in nodes], y=[data["level"] for _, data in nodes], mode="markers+text",
        name=NODE_TRACE_NAME, showlegend=False, customdata=[[node] for node, _ in nodes], text=texts,
        textposition="bottom center", textfont=dict(size=LABEL_FONT, color=text_colours, shadow=LABEL_HALO),
        hovertext=[_hover_text(graph, node, data, costs.get(node, {}), repeats, times.get(node), dead.get(node))
                   for node, data in nodes],
        hoverinfo="text",
        marker=dict(color=colours, symbol=symbols, size=[sizes.of[node] for node, _ in nodes], opacity=1.0,
                    line=dict(color=outlines, width=widths), **(colour_scale if colour_mode else {})),
        **_ALWAYS_OPAQUE)


def _selection_ring(graph, sizes: _NodeSizes, selected: str | None) -> list[dict]:
    """Returns the shapes: a ring in pixels around the selected block, above everything, in every mode."""
    if selected is None or selected not in graph:
        return []
    radius = sizes.of[selected] / 2 + 5
    data = graph.nodes[selected]
    return [dict(type="circle", xref="x", yref="y", xsizemode="pixel", ysizemode="pixel", xanchor=data["order"],
                 yanchor=data["level"], x0=-radius, x1=radius, y0=-radius, y1=radius, layer="above",
                 line=dict(color=SELECTED_COLOUR, width=3))]


def _figure_layout(height: int, margin: dict, legend: bool, title: str | None, macs_mode: str, x_axis: dict,
                   levels: list[int], y_labels: list[str], y_title: str, y_range: list[float],
                   shapes: list[dict]) -> dict:
    """Returns the figure's layout: legends in rows below (connections) and above (blocks) the plot, so the plot
    gets the whole width; levels on the y axis."""
    return dict(
        height=height, margin=dict(**margin, autoexpand=True), showlegend=legend,
        title=dict(text=html.escape(title), x=0.01, xanchor="left", y=0.99, yref="container", yanchor="top",
                   font=dict(size=15)) if title else None,
        plot_bgcolor="white", paper_bgcolor="white", dragmode="pan", clickmode="event+select", hovermode="closest",
        hoverlabel=dict(bgcolor="white", font=dict(size=12), align="left"), hoverdistance=12,
        legend=dict(orientation="h", x=0.0, xanchor="left", y=0.0, yanchor="bottom", yref="container",
                    title=dict(text="connections:", side="left"), font=dict(size=11), itemclick=False,
                    itemdoubleclick=False, itemwidth=30),
        legend2=dict(orientation="h", x=0.0, xanchor="left", y=1.0, yanchor="bottom", yref="paper",
                     title=dict(text=BLOCK_LEGEND_TITLES[macs_mode], side="left"), font=dict(size=11),
                     itemclick=False, itemdoubleclick=False, itemwidth=30),
        shapes=shapes,
        xaxis=x_axis,
        yaxis=dict(title=dict(text=y_title, font=dict(size=12)), tickmode="array",
                   tickvals=levels, ticktext=y_labels, range=y_range, showgrid=True, gridcolor="#eeeeee",
                   zeroline=False, fixedrange=True, automargin=True),
    )


def _segment_crosses(p: tuple, q: tuple, box: tuple) -> bool:
    """Whether the segment p-q (pixels) passes through the box (left, top, right, bottom): Liang-Barsky clipping."""
    low, high = 0.0, 1.0
    dx, dy = q[0] - p[0], q[1] - p[1]
    for step, room in ((-dx, p[0] - box[0]), (dx, box[2] - p[0]), (-dy, p[1] - box[1]), (dy, box[3] - p[1])):
        if step == 0:
            if room < 0:
                return False
            continue
        t = room / step
        if step < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def _label_sides(nodes, size_of: dict, polylines: list, ghosts: list, outputs: list, x_range: list, y_range: list,
                 plot: tuple) -> list[str]:
    """Returns a text position per node (LABEL_SIDES) for its id: below it unless a connection, another block, a
    stacked copy, an output label or an id placed before crosses the label there, else the first side with the
    fewest such crossings, weighted (the halo keeps an id readable where no side is free: with SpineNet-190's
    stacks, b10's every side has a connection or a copy). Pixels from the plot's expected size `plot` (width,
    height)."""
    width, height = plot

    def pixel(x: float, y: float) -> tuple[float, float]:
        return ((x - x_range[0]) / (x_range[1] - x_range[0]) * width,
                (y_range[1] - y) / (y_range[1] - y_range[0]) * height)

    segments = [(pixel(*a), pixel(*b)) for line in polylines for a, b in zip(line, line[1:])]
    centres = {node: pixel(data["order"], data["level"]) for node, data in nodes}
    blocks = {node: (x - size_of[node] / 2, y - size_of[node] / 2, x + size_of[node] / 2, y + size_of[node] / 2)
              for node, (x, y) in centres.items()}
    copies = []
    for x, y, size in ghosts:
        (cx, cy), half = pixel(x, y), size / 2
        copies.append((cx - half, cy - half, cx + half, cy + half))
    others = []
    for x, y, level in outputs:  # "P<level>" right of its block
        cx, cy = pixel(x, y)
        others.append((cx, cy - 8, cx + 2 + 8 * len(str(level)), cy + 7))
    placed, sides = [], []
    for node, data in nodes:
        (cx, cy), radius = centres[node], size_of[node] / 2
        label_width = CHAR_WIDTH * len(node) + 2
        # plotly puts a text at 1.25 x the marker's radius + 1 from its centre on the chosen sides.
        offset = radius / 0.8 + 1
        boxes = {}
        for side in LABEL_SIDES:
            vertical, horizontal = side.split()
            left = {"left": cx - offset - label_width, "center": cx - label_width / 2, "right": cx + offset}[horizontal]
            top = {"top": cy - offset - 1.05 * LABEL_FONT, "middle": cy - 0.55 * LABEL_FONT,
                   "bottom": cy + offset - 0.1 * LABEL_FONT}[vertical]
            boxes[side] = (left, top, left + label_width, top + 1.15 * LABEL_FONT)
        best = None
        for side in LABEL_SIDES:
            if side == "middle right" and data["output_level"] is not None:
                continue  # its "P<level>" is there
            box = boxes[side]
            # A connection through the id counts twice a stacked copy under it (both are drawn below the ids, and
            # a copy is pale); another block, an output label or another id, or leaving the plot, three times.
            faults = 2 * sum(_segment_crosses(p, q, box) for p, q in segments)
            faults += sum(_overlaps(box, other) for other in copies)
            faults += 3 * sum(_overlaps(box, other) for key, other in blocks.items() if key != node)
            faults += 3 * sum(_overlaps(box, other) for other in others + placed)
            faults += 0 if box[0] >= 0 and box[2] <= width and box[1] >= 0 and box[3] <= height else 3
            if best is None or faults < best[0]:
                best = (faults, side, box)
            if faults == 0:
                break
        placed.append(best[2])
        sides.append(best[1])
    return sides


def _overlaps(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _legend_rows(title: str, labels: list[str], width: float) -> int:
    """Returns how many rows a horizontal legend of `labels` takes in `width` pixels (plotly wraps item by item)."""
    rows, used = 1, _text_px(title, LEGEND_FONT) + 10
    for label in labels:
        item = LEGEND_ITEM_PX + _text_px(label, LEGEND_FONT)
        if used + item > width and used > 0:
            rows, used = rows + 1, 0
        used += item
    return rows


def _text_px(text: str, font_size: float) -> float:
    return TEXT_WIDTH * font_size * len(html.unescape(text))


def _margins(y_labels: list[str], x_axis: dict, connections: list[str] | None, blocks: list[str] | None,
             blocks_title: str, top_band: bool, width: float) -> dict:
    """Returns the figure's margins {l, r, t, b} in pixels, estimated from its labels and legends.

    Set in advance, they spare plotly a second drawing: with margins too small for them, its automargin draws the
    figure, measures the tick labels and legends, and draws it all again (about half of every redraw). Automargin
    stays on, so a label longer than estimated (another font) still fits, at the cost of that second drawing.
    `top_band`: a title or a colour bar above the plot."""
    left = Y_TITLE_PX + _text_px(max(y_labels, key=len, default=""), 12)
    ticks = TICK_LINE_PX
    if x_axis.get("tickangle") == -90:  # upright block ids
        longest = max(x_axis["ticktext"], key=len, default="")
        ticks = max(ticks, UPRIGHT_TEXT_WIDTH * x_axis["tickfont"]["size"] * len(html.unescape(longest)) + 2)
    top = 52 if top_band else 10
    bottom = X_TITLE_PX + ticks
    room = 0.95 * width  # the width hints are rounded up: wrap a little early rather than draw twice
    if blocks is not None:
        top += 10 + LEGEND_ROW_PX * _legend_rows(blocks_title, blocks, room)
    if connections is not None:
        bottom += 10 + LEGEND_ROW_PX * _legend_rows("connections:", connections, room)
    return {side: math.ceil(value + MARGIN_SLACK_PX) for side, value in
            (("l", left), ("r", RIGHT_PX), ("t", top), ("b", bottom))}


def _x_axis(nodes, ids_beside_nodes: bool, spacing: float) -> dict:
    """The x axis: block order; when the ids do not fit beside the nodes, the ids themselves (turned upright)."""
    # Room on the right for the last block's "P<level>" label (about 34 px) however narrow the figure is.
    axis = dict(showgrid=False, zeroline=False, range=[-0.8, len(nodes) - 1 + max(0.8, 34 / spacing)],
                automargin=True, tickfont=dict(size=10))
    if ids_beside_nodes:
        axis.update(title=dict(text="block order", font=dict(size=12)), dtick=1 if len(nodes) <= 30 else 5)
        return axis
    every = max(1, math.ceil(9.5 / max(spacing, 1e-9)))  # one upright label per 9.5 px at least
    shown = nodes[::every]
    axis.update(title=dict(text="block (in build order)", font=dict(size=12)), tickmode="array",
                tickvals=[data["order"] for _, data in shown], ticktext=[html.escape(node) for node, _ in shown],
                tickangle=-90, tickfont=dict(size=9 if every == 1 else 8))
    return axis


def _legend(traces: list[dict], nodes, macs_mode: str, repeats: int, has_selection: bool,
            has_dead: bool = False) -> None:
    """Legend-only entries that say what the marks mean in the current mode (never clickable)."""
    styles = {}
    for _, data in nodes:
        colour, symbol, label = _node_style(data)
        styles.setdefault(label, (colour, symbol))
    entries = [(label, SHAPE_ONLY_COLOUR if macs_mode in ("colour", "time_colour") else colour, symbol, "white")
               for label, (colour, symbol) in styles.items()]
    if repeats > 1:
        entries.append((f"stack: ×{repeats} repeats", "#f2f2f2", "square", "#7a7a7a"))
    if has_dead:
        entries.append((DEAD_LABEL, "rgba(0,0,0,0)", "circle-open", DEAD_COLOUR))
    if has_selection:
        entries.append(("selected block", "rgba(0,0,0,0)", "circle-open", SELECTED_COLOUR))
    for label, colour, symbol, line in entries:
        open_ring = symbol.endswith("-open")
        traces.append(dict(type="scatter",
            x=[None], y=[None], mode="markers", name=label, legend="legend2", hoverinfo="skip",
            marker=dict(color=line if open_ring else colour, symbol=symbol, size=11,
                        line=dict(color=line, width=2.5 if open_ring else 1))))


def _hover_text(graph, node, data, cost, repeats: int = 1, time: dict | None = None, dead: str | None = None) -> str:
    """Returns the HTML hover text of one node; user-supplied strings (ids) are escaped. `dead`: why the block
    reaches no output (`dead_blocks`), for a dead one."""
    safe = html.escape(node)
    kind = data["block_fn"] if repeats == 1 or data["role"] == "fpn" else f"{repeats} × {data['block_fn']}"
    lines = [f"<b>{safe}</b>" + (f"  (P{data['output_level']} output)" if data["output_level"] is not None else ""),
             f"level L{data['level']} · {data['width']}×{data['height']} px",
             f"type {kind}" + (" (stem)" if data["role"] == "stem" else ""),
             f"channels {data['in_channels']} → {data['channels']}"]
    if cost:
        share = cost.get("share")
        lines.append(f"params {_format_count(cost.get('params'))} · MACs {_format_count(cost.get('macs'))}"
                     + (f" ({100 * share:.1f}%)" if share is not None else ""))
        if cost.get("resample_macs") is not None:
            lines.append(f"resampling: {_format_count(cost.get('resample_params'))} params, "
                         f"{_format_count(cost['resample_macs'])} MACs")
    if time:
        lines.append(f"time {time['median_ms']:.2f} ms ({100 * time['share']:.1f}% of the timed blocks)")
    inputs = []
    for source, _, edge in graph.in_edges(node, data=True):
        label = "0-outdegree merge" if edge["merge"] else edge["resample"]
        inputs.append(f"{html.escape(source)} ({label})")
    if inputs:
        lines.append("inputs: " + ", ".join(inputs))
    if dead:
        lines.append(f"<b>{DEAD_LABEL}</b>: {html.escape(dead)} (built, params count, 0 MACs)")
    return "<br>".join(lines)
