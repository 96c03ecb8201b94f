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

import plotly.graph_objects as go

from spinescope.spinenet.graph import to_graph
from spinescope.spinenet.input_size import level_label
from spinescope.spinenet.layout import Layout, live_nodes, resolve
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


def resample_category(direction: str, factor: int) -> str:
    """Returns the legend label of a connection: 'same level', 'down x2', 'up x4', ..."""
    return "same level" if direction == "same" else f"{direction} x{factor}"


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
    e.g. {'b17': 'b17 feeds no block and is not an output'} (plain text). A dead block is built and run and its
    params count, but nothing uses its result: fvcore's trace drops it, so it counts 0 MACs."""
    live = live_nodes(layout)
    reasons = {}
    for node in layout.nodes:
        if node.id in live:
            continue
        targets = list(dict.fromkeys(edge.target for edge in layout.edges if edge.source == node.id))
        if not targets:
            reasons[node.id] = f"{node.id} feeds no block and is not an output"
        else:
            reasons[node.id] = (f"{node.id} feeds only {', '.join(targets)}, which "
                                f"{'reaches' if len(targets) == 1 else 'reach'} no output")
    return reasons


def dead_blocks_note(layout: Layout) -> str | None:
    """Returns one line naming the dead blocks and why (plain text), or None when every block reaches an output."""
    reasons = dead_blocks(layout)
    if not reasons:
        return None
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


def edge_costs(spec: Spec, input_size: int | None = None) -> dict[tuple[str, str], dict]:
    """Returns {(source, target): {"params", "macs"}} for every connection that has modules of its own: a
    SpineNet parent's resampling (`blocks.<target>.resample.<i>`) or an FPN lateral 1x1 conv; counted by the
    fast exact counter (the same numbers as fvcore's trace of the real model)."""
    from spinescope.analysis.counting.fast import count_model

    counts = count_model(spec, input_size)
    layout = resolve(spec, input_size)
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


def graph_figure(spec: Spec, input_size: int | None = None, costs: dict | None = None, macs_mode: str = "off",
                 selected: str | None = None, height: int = 520, title: str | None = None,
                 width_hint: int = WIDTH_HINT, times: dict | None = None, legend: bool = True) -> go.Figure:
    """Returns the plotly figure of `spec`'s backbone at `input_size` pixels.

    costs: optional {node id: {"params": int, "macs": int, "resample_macs": int | None, "share": float}} shown in
    the hover text and used by `macs_mode` ('off', 'size': node area by MACs share, 'colour': node colour by it).
    times: optional {node id: {"median_ms": float, "share": float (0..1)}} from a per-block latency run, shown in
    the hover text and used by the modes 'time_size' and 'time_colour' (which fall back to 'off' without it).
    width_hint: the plot's expected width in pixels; node sizes, whether block ids fit beside the nodes (else
    they label the x axis) and the margins follow from it.
    legend: False leaves out both legends (small multiples such as Compare's).
    The node trace is named NODE_TRACE_NAME, is the last trace (drawn on top) and carries each node's id as customdata[0] (for
    click selection); it is the only trace with customdata.
    """
    graph = to_graph(spec, input_size)
    costs = costs or {}
    times = times or {}
    macs_mode = macs_mode if macs_mode in MACS_MODES else "off"
    if macs_mode in TIME_MODES and not times:
        macs_mode = "off"
    size_mode, colour_mode = macs_mode in ("size", "time_size"), macs_mode in ("colour", "time_colour")
    connection_costs = edge_costs(spec, graph.graph["input_size"])
    dead = dead_blocks(resolve(spec, graph.graph["input_size"]))
    nodes = sorted(graph.nodes(data=True), key=lambda item: item[1]["order"])
    levels = sorted({data["level"] for _, data in nodes})
    positions = {node: (data["order"], data["level"]) for node, data in nodes}
    repeats = spec.scaling.block_repeats  # 1 for families without repeats (ResNet-FPN)

    # Node sizes: as large as the spacing of the blocks allows, so long chains stay separate dots.
    spacing = width_hint / max(len(nodes), 1)
    full_size = max(MIN_SIZE, min(BASE_SIZE, 0.7 * spacing))
    source = times if macs_mode in TIME_MODES else costs
    shares = [source.get(node, {}).get("share") or 0.0 for node, _ in nodes]
    max_share = max(shares + [1e-12])
    if size_mode:
        sizes = [max(MIN_SIZE, full_size * (0.55 + 1.6 * math.sqrt(share / max_share)) / 1.3) for share in shares]
    else:
        sizes = [full_size] * len(nodes)
    size_of = {node: size for (node, _), size in zip(nodes, sizes)}
    longest_id = max((len(node) for node, _ in nodes), default=1)
    ids_beside_nodes = spacing >= CHAR_WIDTH * longest_id + 2

    traces: list[dict] = []  # plain dicts, validated once when the figure is made (much faster than per trace)
    # Connections: one line trace per resampling category (no hover of their own, so a click near a node always
    # reaches the node), and one invisible marker at the middle of each connection that carries its hover text.
    categories: dict[tuple[str, bool], dict] = {}
    middle_x, middle_y, middle_text = [], [], []
    arrow_x, arrow_y, arrow_colours, arrow_sizes, arrow_standoff = [], [], [], [], []
    polylines = []  # every connection's points, for placing the block ids clear of them
    for source, target, data in graph.edges(data=True):
        key = ("0-outdegree merge" if data["merge"] else resample_category(data["direction"], data["factor"]),
               data["merge"])
        colour = edge_colour(data["direction"], data["factor"], data["merge"])
        entry = categories.setdefault(key, {"x": [], "y": [], "colour": colour,
                                            "sort": (data["merge"], data["direction"] != "same",
                                                     data["direction"], data["factor"])})
        points = _curve(*positions[source], *positions[target])
        polylines.append(points)
        text = _edge_hover(source, target, data, connection_costs.get((source, target)))
        entry["x"] += [x for x, _ in points] + [None]
        entry["y"] += [y for _, y in points] + [None]
        middle = points[len(points) // 2]
        middle_x.append(middle[0])
        middle_y.append(middle[1])
        middle_text.append(text)
        # Arrowhead: a marker at the target's centre, turned along the curve's last segment and moved back
        # (standoff, pixels) to the target's border, so a large node never hides it.
        arrow_x += [points[-2][0], points[-1][0]]
        arrow_y += [points[-2][1], points[-1][1]]
        arrow_colours += [colour, colour]
        head = max(7.0, min(10.0, 0.55 * full_size))
        arrow_sizes += [0, head]
        arrow_standoff += [0, size_of[target] / 2 + 1.5]
    for index, ((label, merge), entry) in enumerate(sorted(categories.items(), key=lambda item: item[1]["sort"])):
        traces.append(dict(type="scatter",
            x=entry["x"], y=entry["y"], mode="lines", name=label, legend="legend", hoverinfo="skip",
            line=dict(color=entry["colour"], width=1.6 if not merge else 2.0, dash="dash" if merge else "solid"),
            opacity=0.85))
    traces.append(dict(type="scatter",
        x=middle_x, y=middle_y, mode="markers", name=CONNECTION_HOVER_NAME, showlegend=False,
        hovertext=middle_text, hoverinfo="text", marker=dict(size=14, color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=1.0))))

    # Repeated blocks: every node drawn as a small stack (up to MAX_STACK copies) behind it.
    ghosts = []  # (x, y, marker size) of every copy, for placing the block ids clear of them
    if repeats > 1:
        stack_x, stack_y, stack_symbols, stack_sizes = [], [], [], []
        for copy in range(min(repeats, MAX_STACK) - 1, 0, -1):
            for (node, data), size in zip(nodes, sizes):
                stack_x.append(data["order"] - copy * 0.09)
                stack_y.append(data["level"] + copy * 0.06)
                stack_symbols.append(_node_style(data)[1])
                stack_sizes.append(size)
                ghosts.append((stack_x[-1], stack_y[-1], size))
        traces.append(dict(type="scatter",
            x=stack_x, y=stack_y, mode="markers", name=REPEAT_TRACE_NAME, showlegend=False, hoverinfo="skip",
            marker=dict(color="#f2f2f2", symbol=stack_symbols, size=stack_sizes, line=dict(color="#7a7a7a", width=1)),
            selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=1.0))))

    xs, ys, colours, symbols, texts, hovers, ids, outlines, widths = [], [], [], [], [], [], [], [], []
    text_colours = []
    for (node, data), share in zip(nodes, shares):
        colour, symbol, _ = _node_style(data)
        xs.append(data["order"])
        ys.append(data["level"])
        ids.append([node])
        # A dead block is hollow (its type's shape, open), grey where colour means the type.
        colours.append(share if colour_mode else DEAD_COLOUR if node in dead else colour)
        symbols.append(symbol + "-open" if node in dead else symbol)
        label = html.escape(node)
        texts.append((f"<b>{label}</b>" if node == selected else label) if ids_beside_nodes else "")
        text_colours.append("#777777" if node in dead else "#333333")
        outlines.append("#222222" if data["output_level"] is not None or node == selected else "white")
        widths.append(2.5 if node == selected else 2.0 if node in dead else 1.5)
        hovers.append(_hover_text(graph, node, data, costs.get(node, {}), repeats, times.get(node),
                                  dead.get(node)))
    node_trace = dict(type="scatter",
        x=xs, y=ys, mode="markers+text", name=NODE_TRACE_NAME, showlegend=False,
        customdata=ids, text=texts, textposition="bottom center",
        textfont=dict(size=LABEL_FONT, color=text_colours, shadow=LABEL_HALO), hovertext=hovers, hoverinfo="text",
        marker=dict(
            color=colours, symbol=symbols, size=sizes, opacity=1.0, line=dict(color=outlines, width=widths),
            **({"colorscale": "Viridis", "cmin": 0, "cmax": max_share,
                "colorbar": dict(title=dict(text=COLOUR_BAR_TITLES[macs_mode], side="right"), tickformat=".0%", thickness=10,
                                 nticks=4, tickangle=0, orientation="h", len=0.25, x=1.0, xanchor="right", y=1.0, yanchor="top",
                                 yref="container", ypad=6, tickfont=dict(size=10))}
               if colour_mode else {})),
        selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=1.0)))
    # Output labels right of their blocks (text only), where the fewest arrows arrive.
    outputs = [(data["order"] + (size_of[node] / 2 + 2) / spacing, data["level"], data["output_level"])
               for node, data in nodes if data["output_level"] is not None and node != f"P{data['output_level']}"]
    if outputs:
        traces.append(dict(type="scatter",
            x=[x for x, _, _ in outputs], y=[y for _, y, _ in outputs], mode="text", name="outputs",
            showlegend=False, hoverinfo="skip", text=[f"<b>P{level}</b>" for _, _, level in outputs],
            textposition="middle right", textfont=dict(size=12, color="#222222")))
    traces.append(dict(type="scatter",
        x=arrow_x, y=arrow_y, mode="markers", name=ARROW_TRACE_NAME, showlegend=False, hoverinfo="skip",
        marker=dict(symbol="arrow", angleref="previous", size=arrow_sizes, standoff=arrow_standoff,
                    color=arrow_colours, line=dict(width=0), opacity=1.0),
        selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=1.0))))

    # Legend-only traces first (they draw nothing) and the nodes last, on top: the node trace's group is then the
    # last `.trace` of plotly's scatter layer, which is how a page (or a test) finds the nodes.
    legend_traces: list[dict] = []
    if legend:
        _legend(legend_traces, nodes, macs_mode, repeats, selected is not None and selected in positions, bool(dead))
    traces = legend_traces + traces + [node_trace]
    size = graph.graph["input_size"]
    shapes = []
    if selected in positions:  # a ring in pixels around the selected block, above everything, in every mode
        radius = size_of[selected] / 2 + 5
        x, y = positions[selected]
        shapes.append(dict(type="circle", xref="x", yref="y", xsizemode="pixel", ysizemode="pixel", xanchor=x,
                           yanchor=y, x0=-radius, x1=radius, y0=-radius, y1=radius, layer="above",
                           line=dict(color=SELECTED_COLOUR, width=3)))
    y_labels = [f"L{level} · {level_label(size, level)}px" for level in levels]
    x_axis = _x_axis(nodes, ids_beside_nodes, spacing)
    connection_labels = [label for label, _ in categories]
    block_labels = [trace["name"] for trace in legend_traces]
    margin = _margins(y_labels, x_axis, connection_labels if legend else None, block_labels if legend else None,
                      BLOCK_LEGEND_TITLES[macs_mode], bool(title or colour_mode), width_hint)
    y_range = [min(levels) - 0.6, max(levels) + 0.75]
    if ids_beside_nodes:
        plot = (width_hint, max(height - margin["t"] - margin["b"], 50))
        node_trace["textposition"] = _label_sides(nodes, size_of, polylines, ghosts, outputs, x_axis["range"],
                                                  y_range, plot)
    layout = dict(
        height=height, margin=dict(**margin, autoexpand=True), showlegend=legend,
        title=dict(text=html.escape(title), x=0.01, xanchor="left", y=0.99, yref="container", yanchor="top",
                   font=dict(size=15)) if title else None,
        plot_bgcolor="white", paper_bgcolor="white", dragmode="pan", clickmode="event+select", hovermode="closest",
        hoverlabel=dict(bgcolor="white", font=dict(size=12), align="left"), hoverdistance=12,
        # Legends in rows below (connections) and above (blocks) the plot, so the plot gets the whole width.
        legend=dict(orientation="h", x=0.0, xanchor="left", y=0.0, yanchor="bottom", yref="container",
                    title=dict(text="connections:", side="left"), font=dict(size=11), itemclick=False,
                    itemdoubleclick=False, itemwidth=30),
        legend2=dict(orientation="h", x=0.0, xanchor="left", y=1.0, yanchor="bottom", yref="paper",
                     title=dict(text=BLOCK_LEGEND_TITLES[macs_mode], side="left"), font=dict(size=11),
                     itemclick=False, itemdoubleclick=False, itemwidth=30),
        shapes=shapes,
        xaxis=x_axis,
        yaxis=dict(title=dict(text="feature level (size at input)", font=dict(size=12)), tickmode="array",
                   tickvals=levels, ticktext=y_labels,
                   range=y_range, showgrid=True, gridcolor="#eeeeee",
                   zeroline=False, fixedrange=True, automargin=True),
    )
    return go.Figure(dict(data=traces, layout=layout))


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
