"""The architecture graph as a plotly figure: x = block order, y = feature level, as in the paper's figures.

Nodes are coloured (and shaped) by block type, output blocks are labelled P3..P7, each connection is an arrow
coloured by its resampling (same level, up xN, down xN); connections added by the 0-outdegree rule are dashed.
Optionally the MACs share of each block sets the node size or colour. No Streamlit here: the same figure is shown
in the app and exported as HTML, PNG or SVG.
"""
from __future__ import annotations

import html
import math

import plotly.graph_objects as go

from spinenet.graph import to_graph
from spinenet.spec import Spec

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
SELECTED_COLOUR = "#f2c14e"
MACS_MODES = ("off", "size", "colour")
BASE_SIZE = 18
NODE_TRACE_NAME = "blocks"


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


def _curve(x0, y0, x1, y1, samples=14):
    """Points of a quadratic curve from (x0, y0) to (x1, y1) bowing upwards with the horizontal distance, so
    long connections along one level do not run through the blocks between their ends."""
    bulge = 0.0 if abs(x1 - x0) <= 1 else min(0.12 * (abs(x1 - x0) - 1), 1.2)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + bulge
    points = []
    for i in range(samples + 1):
        t = i / samples
        points.append(((1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t * t * x1,
                       (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t * t * y1))
    return points


def graph_figure(spec: Spec, input_size: int | None = None, costs: dict | None = None, macs_mode: str = "off",
                 selected: str | None = None, height: int = 520, title: str | None = None) -> go.Figure:
    """Returns the plotly figure of `spec`'s backbone at `input_size` pixels.

    costs: optional {node id: {"params": int, "macs": int, "resample_macs": int | None, "share": float}} shown in
    the hover text and used by `macs_mode` ('off', 'size': node area by MACs share, 'colour': node colour by it).
    The node trace is named NODE_TRACE_NAME and carries each node's id as customdata[0] (for click selection).
    """
    graph = to_graph(spec, input_size)
    costs = costs or {}
    figure = go.Figure()
    levels = sorted({data["level"] for _, data in graph.nodes(data=True)})
    positions = {node: (data["order"], data["level"]) for node, data in graph.nodes(data=True)}

    categories: dict[tuple[str, bool], dict] = {}
    arrows = []
    for source, target, data in graph.edges(data=True):
        key = ("0-outdegree merge" if data["merge"] else resample_category(data["direction"], data["factor"]),
               data["merge"])
        entry = categories.setdefault(key, {"x": [], "y": [], "colour": edge_colour(data["direction"],
                                                                                    data["factor"], data["merge"]),
                                            "sort": (data["merge"], data["direction"] != "same",
                                                     data["direction"], data["factor"])})
        points = _curve(*positions[source], *positions[target])
        entry["x"] += [x for x, _ in points] + [None]
        entry["y"] += [y for _, y in points] + [None]
        arrows.append((points[-3], points[-1], entry["colour"]))
    for (label, merge), entry in sorted(categories.items(), key=lambda item: item[1]["sort"]):
        figure.add_trace(go.Scatter(
            x=entry["x"], y=entry["y"], mode="lines", name=label, legendgroup="connections",
            legendgrouptitle_text="connections" if not figure.data else None, hoverinfo="skip",
            line=dict(color=entry["colour"], width=1.6 if not merge else 2.0, dash="dash" if merge else "solid"),
            opacity=0.85))
    for (x0, y0), (x1, y1), colour in arrows:
        figure.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", text="",
                              showarrow=True, arrowhead=2, arrowsize=1.1, arrowwidth=1.5, arrowcolor=colour,
                              standoff=BASE_SIZE / 2 + 1)

    nodes = sorted(graph.nodes(data=True), key=lambda item: item[1]["order"])
    shares = [costs.get(node, {}).get("share") or 0.0 for node, _ in nodes]
    max_share = max(shares + [1e-12])
    xs, ys, colours, symbols, sizes, texts, hovers, ids, outlines = [], [], [], [], [], [], [], [], []
    for (node, data), share in zip(nodes, shares):
        style = TYPE_STYLE.get(data["block_fn"], TYPE_STYLE["conv"])
        if data["role"] == "fpn":
            style = TYPE_STYLE["fpn"]
        colour = STEM_COLOUR if data["role"] == "stem" else style[0]
        xs.append(data["order"])
        ys.append(data["level"])
        ids.append([node])
        colours.append(share if macs_mode == "colour" else colour)
        symbols.append(style[1])
        sizes.append(BASE_SIZE * (0.55 + 1.6 * math.sqrt(share / max_share)) if macs_mode == "size" else BASE_SIZE)
        output = data["output_level"]
        texts.append(f"<b>P{output}</b>" if output is not None else "")
        outlines.append(SELECTED_COLOUR if node == selected else ("#222222" if output is not None else "white"))
        hovers.append(_hover_text(graph, node, data, costs.get(node, {})))
    figure.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers+text", name=NODE_TRACE_NAME, showlegend=False, customdata=ids, text=texts,
        textposition="top center", textfont=dict(size=13, color="#222222"), hovertext=hovers, hoverinfo="text",
        marker=dict(
            color=colours, symbol=symbols, size=sizes, opacity=1.0,
            line=dict(color=outlines, width=[4 if node == selected else 2 for node, _ in nodes]),
            **({"colorscale": "Viridis", "cmin": 0, "cmax": max_share,
                "colorbar": dict(title=dict(text="MACs<br>share", side="top"), tickformat=".0%", thickness=12,
                                 len=0.36, x=1.02, xanchor="left", y=0.0, yanchor="bottom")}
               if macs_mode == "colour" else {})),
        selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=1.0))))
    # Legend entries for the block types present (markers only, never selectable).
    legend = {}
    for _, data in nodes:
        style = TYPE_STYLE["fpn"] if data["role"] == "fpn" else TYPE_STYLE.get(data["block_fn"], TYPE_STYLE["conv"])
        if data["role"] == "stem":
            style = (STEM_COLOUR, style[1], "stem")
        legend.setdefault(style[2], style)
    for index, (colour, symbol, label) in enumerate(legend.values()):
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=label, legendgroup="blocks",
                                    legendgrouptitle_text="blocks" if index == 0 else None, hoverinfo="skip",
                                    marker=dict(color=colour, symbol=symbol, size=11,
                                                line=dict(color="white", width=1))))
    size = graph.graph["input_size"]
    figure.update_layout(
        height=height, margin=dict(l=10, r=10, t=58 if title else 48, b=10),  # room for the toolbar above the legend
        title=dict(text=html.escape(title), x=0.01, font=dict(size=15)) if title else None,
        plot_bgcolor="white", paper_bgcolor="white", dragmode="pan", clickmode="event+select", hovermode="closest",
        hoverlabel=dict(bgcolor="white", font_size=12, align="left"),
        legend=dict(orientation="v", x=1.0, xanchor="left", y=1.0, font=dict(size=11), tracegroupgap=8,
                    itemclick=False, itemdoubleclick=False),
        xaxis=dict(title=dict(text="block order", font=dict(size=12)), showgrid=False, zeroline=False,
                   range=[-0.8, len(nodes) - 0.2], dtick=1 if len(nodes) <= 30 else 5, tickfont=dict(size=10)),
        yaxis=dict(title=dict(text="feature level (size at input)", font=dict(size=12)), tickmode="array",
                   tickvals=levels, ticktext=[f"L{level} · {-(-size // 2 ** level)}px" for level in levels],
                   range=[min(levels) - 0.6, max(levels) + 1.1], showgrid=True, gridcolor="#eeeeee",
                   zeroline=False, fixedrange=True),
    )
    return figure


def _hover_text(graph, node, data, cost) -> str:
    """Returns the HTML hover text of one node; user-supplied strings (ids) are escaped."""
    safe = html.escape(node)
    lines = [f"<b>{safe}</b>" + (f"  (P{data['output_level']} output)" if data["output_level"] is not None else ""),
             f"level L{data['level']} · {data['feature_size']}×{data['feature_size']} px",
             f"type {data['block_fn']}" + (" (stem)" if data["role"] == "stem" else ""),
             f"channels {data['in_channels']} → {data['channels']}"]
    if cost:
        share = cost.get("share")
        lines.append(f"params {_format_count(cost.get('params'))} · MACs {_format_count(cost.get('macs'))}"
                     + (f" ({100 * share:.1f}%)" if share is not None else ""))
        if cost.get("resample_macs") is not None:
            lines.append(f"resampling: {_format_count(cost.get('resample_params'))} params, "
                         f"{_format_count(cost['resample_macs'])} MACs")
    inputs = []
    for source, _, edge in graph.in_edges(node, data=True):
        label = "0-outdegree merge" if edge["merge"] else edge["resample"]
        inputs.append(f"{html.escape(source)} ({label})")
    if inputs:
        lines.append("inputs: " + ", ".join(inputs))
    return "<br>".join(lines)
