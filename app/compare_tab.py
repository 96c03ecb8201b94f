"""Compare: the current spec beside others (built-ins or saved designs) at the same input size: graphs side by
side, a metrics table with ratios and the published figures, and MACs vs params (and vs latency where measured)."""
from __future__ import annotations

import math
import re

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from spinescope.analysis.comparison.compare import builtin_name
from spinescope.analysis.comparison.published import published_for, published_rows
from spinescope.app import counts, session, sidebar
from spinescope.app.graph_figure import graph_figure
from spinescope.app.guard import one_line
from spinescope.app.latency_view import latest_latency_ms
from spinescope.app.markup import escape_html, escape_md
from spinescope.app.tables import INPUT_PX_COLUMN, column, table as show_table
from spinescope.app.units import ratio
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.input_size import size_label, size_to_json
from spinescope.spinenet.spec import Spec

DESIGN_PREFIX = "design: "
MAX_OTHERS = 4


def _choices() -> list[str]:
    return list(BUILTIN_NAMES) + [DESIGN_PREFIX + info.name for info in session.store().designs()]


def _label(choice: str) -> str:
    return choice if choice.startswith(DESIGN_PREFIX) else load_builtin(choice).name


def _spec_for(choice: str) -> Spec | None:
    if choice.startswith(DESIGN_PREFIX):
        try:
            return session.store().load_design(choice[len(DESIGN_PREFIX):])
        except Exception as error:  # noqa: BLE001 - a vanished or invalid design is reported, the rest compared
            st.warning(escape_md(f"Skipped {choice}: {one_line(error)}"))
            return None
    return load_builtin(choice)


@session.callback("compare")
def _others_changed() -> None:
    session.set_setting("compare_with", list(st.session_state.compare_with))


def comparison_rows(specs: list[Spec], input_sizes: list[int], head: str) -> pd.DataFrame:
    """Returns one row per spec: measured params/MACs (backbone and with head), ratios to the first spec,
    published figures for built-ins at that input size, and the latest measured latency if any."""
    rows, first = [], None
    for spec, size in zip(specs, input_sizes):
        result = counts.analysis_of(spec, size, head)
        first = first or result
        builtin = builtin_name(spec)
        published = published_for(builtin, size) if builtin else None
        rows.append({
            "model": spec.name, "input px": size_to_json(size),
            "backbone params (M)": result.backbone_params / 1e6, "backbone MACs (B)": result.backbone_macs / 1e9,
            "params with head (M)": result.params / 1e6, "MACs with head (B)": result.macs / 1e9,
            "FLOPs with head (B)": result.flops / 1e9,
            "head share of MACs %": round(100 * result.head_macs_share, 1),  # SpineNet-190 at 1280: two thirds
            "params ratio": ratio(result.params, first.params), "MACs ratio": ratio(result.macs, first.macs),
            "published params (M)": published["params_m"] if published and head == "retinanet" else None,
            "published MACs (B)": published["macs_b"] if published and head == "retinanet" else None,
            "published AP": published.get("ap") if published else None,
            "latency ms (measured)": latest_latency_ms(spec, size),
        })
    return pd.DataFrame(rows)


def log_ticks(low: float, high: float) -> list[float]:
    """Returns 1-2-5 tick values covering [low, high] (a log axis with readable, evenly spaced ticks)."""
    ticks, decade = [], 10 ** math.floor(math.log10(low))
    while decade <= high * 10:
        ticks += [value for value in (decade, 2 * decade, 5 * decade) if low <= value <= high]
        decade *= 10
    return ticks


def _tick_text(value: float) -> str:
    return f"{value:g}" if value < 1e4 else f"{value:,.0f}"


# Label placement for the MACs-vs-params plot: the plot area's size assumed in pixels (the chart is at least this
# big at 1366 px), the font's average character width and line height as fractions of its size, and the sides
# tried in order.
PLOT_PIXELS = (780, 360)
CHAR_WIDTH, LINE_HEIGHT = 0.62, 1.3
PLACEMENTS = ("top right", "bottom right", "top left", "bottom left", "middle right", "middle left", "top center",
              "bottom center")


def _label_box(x: float, y: float, text: str, font: float, radius: float, position: str) -> tuple:
    """Returns the (left, top, right, bottom) pixel box of a label drawn at `position` beside a marker of
    `radius` pixels centred at pixel (x, y); y grows downwards."""
    width, height = CHAR_WIDTH * font * len(text), LINE_HEIGHT * font
    vertical, horizontal = position.split()
    left = {"right": x + radius, "left": x - radius - width, "center": x - width / 2}[horizontal]
    top = {"top": y - radius - height, "bottom": y + radius, "middle": y - height / 2}[vertical]
    return left, top, left + width, top + height


def _overlaps(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(points: list[tuple], x_range: list[float], y_range: list[float]) -> list[str | None]:
    """Returns a text position per point (x, y, text, font size, marker radius in pixels), or None where no side
    is free: in the given order (the most important first), each label takes the first side where it overlaps no
    label placed before it, no marker and stays inside the plot (log axes over `x_range` and `y_range`)."""
    width, height = PLOT_PIXELS
    (x0, x1), (y0, y1) = (map(math.log10, x_range)), (map(math.log10, y_range))

    def pixel(x: float, y: float) -> tuple[float, float]:
        return (math.log10(x) - x0) / (x1 - x0) * width, (y1 - math.log10(y)) / (y1 - y0) * height

    centres = [pixel(x, y) for x, y, *_ in points]
    markers = [(cx - r, cy - r, cx + r, cy + r) for (cx, cy), (*_, r) in zip(centres, points)]
    placed, positions = [], []
    for (cx, cy), (_, _, text, font, radius) in zip(centres, points):
        chosen = None
        for position in PLACEMENTS:
            box = _label_box(cx, cy, re.sub(r"<[^>]+>", "", text), font, radius, position)
            inside = box[0] >= 0 and box[2] <= width and box[1] >= 0 and box[3] <= height
            if inside and not any(_overlaps(box, other) for other in placed + markers):
                chosen = position
                placed.append(box)
                break
        positions.append(chosen)
    return positions


def scatter_figure(frame: pd.DataFrame, head: str) -> go.Figure:
    """MACs vs params of the compared specs, with the paper's published models (AP labelled) for context. Labels
    of neighbouring points go to different sides; the published models are labelled only by their AP (the name
    is in the hover) so that the measured specs' labels stay readable."""
    figure = go.Figure()
    labels = [f"<b>{escape_html(name)}</b>" + (f" (AP {ap})" if pd.notna(ap) else "")
              for name, ap in zip(frame["model"], frame["published AP"])]
    xs, ys = list(frame["params with head (M)"]), list(frame["MACs with head (B)"])
    published = []
    if head == "retinanet":
        published = [row for row in published_rows() if row.get("params_m") and row.get("macs_b")]
    all_x = xs + [row["params_m"] for row in published]
    all_y = ys + [row["macs_b"] for row in published]
    x_range = [min(all_x) / 1.6, max(all_x) * 2.5]
    y_range = [min(all_y) / 1.6, max(all_y) * 1.8]
    # The measured specs are labelled first; a published model is labelled by its AP where there is room (a model
    # measured here at the same place already says its AP), and named in its hover.
    measured_points = [(x, y, label, 11, 7) for x, y, label in zip(xs, ys, labels)]
    published_points = [(row["params_m"], row["macs_b"], f"AP {row['ap']}" if row.get("ap") is not None else "", 9, 5)
                        for row in published]
    positions = place_labels(measured_points + [point for point in published_points if point[2]], x_range, y_range)
    measured_positions = positions[:len(xs)]
    free = iter(positions[len(xs):])
    published_positions = [next(free) if point[2] else None for point in published_points]
    if published:
        figure.add_trace(go.Scatter(
            x=[row["params_m"] for row in published], y=[row["macs_b"] for row in published],
            mode="markers+text", name="published (paper / zoo)",
            marker=dict(symbol="circle-open", size=10, color="#999999"),
            text=[point[2] if position else "" for point, position in zip(published_points, published_positions)],
            customdata=[[f"{load_builtin(row['builtin']).name}@{row['input_size']}",
                         f"AP {row['ap']}" if row.get("ap") is not None else "AP not published"] for row in published],
            textposition=[position or "top right" for position in published_positions],
            textfont=dict(size=9, color="#888888"),
            hovertemplate="%{customdata[0]} · %{customdata[1]}<br>%{x:.1f}M params, %{y:.1f}B MACs"
                          "<extra>published</extra>"))
    figure.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers+text", name="measured here",
        marker=dict(size=13, color=["#e8833a"] + ["#3b6fb6"] * (len(frame) - 1)),
        text=[label if position else "" for label, position in zip(labels, measured_positions)],
        customdata=labels, textposition=[position or "top right" for position in measured_positions],
        textfont=dict(size=11),
        hovertemplate="%{customdata}<br>%{x:.2f}M params, %{y:.2f}B MACs<extra>measured</extra>"))
    x_ticks, y_ticks = log_ticks(*x_range), log_ticks(*y_range)
    figure.update_layout(height=480, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white",
                         title=dict(text="MACs vs params (with head), log scales", font=dict(size=14)),
                         xaxis=dict(title="params (millions)", gridcolor="#eeeeee", type="log",
                                    range=[math.log10(v) for v in x_range], tickvals=x_ticks,
                                    ticktext=[_tick_text(v) for v in x_ticks]),
                         yaxis=dict(title="MACs (billions of multiply-adds)", gridcolor="#eeeeee", type="log",
                                    range=[math.log10(v) for v in y_range], tickvals=y_ticks,
                                    ticktext=[_tick_text(v) for v in y_ticks]),
                         legend=dict(orientation="h", y=-0.2))
    return figure


def latency_figure(frame: pd.DataFrame) -> go.Figure | None:
    """MACs vs measured latency for the compared specs that have a latency measurement; None if none has."""
    measured = frame[frame["latency ms (measured)"].notna()]
    if measured.empty:
        return None
    figure = go.Figure(go.Scatter(
        x=measured["latency ms (measured)"], y=measured["MACs with head (B)"], mode="markers+text",
        text=[escape_html(name) for name in measured["model"]], textposition="top center",
        marker=dict(size=13, color="#3b6fb6"),
        hovertemplate="%{text}<br>%{x:.1f} ms, %{y:.2f}B MACs<extra></extra>"))
    figure.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white",
                         title=dict(text="MACs vs measured latency (latest run)", font=dict(size=14)),
                         xaxis=dict(title="median latency (ms)", gridcolor="#eeeeee", rangemode="tozero"),
                         yaxis=dict(title="MACs (billions)", gridcolor="#eeeeee", rangemode="tozero"))
    return figure


# Short labels and widths in pixels (the CSV keeps the frame's names), so that every column fits at 1366 px;
# the caption above the table gives the units.
COMPARE_COLUMNS = {
    "model": st.column_config.TextColumn("model", width=110),
    "input px": INPUT_PX_COLUMN,
    "backbone params (M)": column("bb params", "backbone params, millions", "%.2f", width=66),
    "backbone MACs (B)": column("bb MACs", "backbone MACs, billions of multiply-adds", "%.2f", width=62),
    "params with head (M)": column("params", "params with the head, millions", "%.2f", width=60),
    "MACs with head (B)": column("MACs", "MACs with the head, billions of multiply-adds", "%.2f", width=58),
    "FLOPs with head (B)": column("FLOPs", "FLOPs with the head (2 × MACs), billions", "%.2f", width=58),
    "params ratio": column("× params", "params with head, as a multiple of the first row's", "%.2f", width=64),
    "MACs ratio": column("× MACs", "MACs with head, as a multiple of the first row's", "%.2f", width=60),
    "head share of MACs %": column("head %", "the head's share of the MACs with head (SpineNet-190 at 1280: two "
                                   "thirds)", "%.1f", width=48),
    "published params (M)": column("paper params", "published params (RetinaNet, COCO), millions", "%.2f",
                                   width=72),
    "published MACs (B)": column("paper MACs", "published MACs (the paper's “FLOPs”), billions", "%.2f",
                                 width=70),
    "published AP": column("paper AP", "published COCO AP", width=64),
    "latency ms (measured)": column("ms", "latest measured median latency, ms (Latency tab)", "%.1f", width=56),
}
COMPARE_MORE = ("backbone params (M)", "backbone MACs (B)", "FLOPs with head (B)")


def render() -> None:
    spec = session.current()
    input_size, head = sidebar.input_size(), sidebar.head()
    choices = _choices()
    if "compare_with" not in st.session_state:
        saved = [choice for choice in session.setting("compare_with", ["resnet50-fpn"]) if choice in choices]
        st.session_state.compare_with = saved
    else:
        st.session_state.compare_with = [c for c in st.session_state.compare_with if c in choices]
    session.show_notes("compare")
    pick, own = st.columns([3, 1], vertical_alignment="bottom")
    pick.multiselect("Compare the current spec with", choices, key="compare_with", format_func=_label,
                     max_selections=MAX_OTHERS, on_change=_others_changed)
    own_sizes = own.toggle("Each at its own input size", key="compare_own_sizes",
                           help=f"Off: everything at {size_label(input_size)} px (the sidebar's input size)")
    others = [other for other in (_spec_for(choice) for choice in st.session_state.compare_with) if other]
    specs = [spec] + others
    sizes = [spec.input_size if own_sizes else input_size for spec in specs]
    head_name = "RetinaNet" if head == "retinanet" else "classification"
    st.caption(f"Backbone (bb) and backbone + {head_name} head. Params in millions, MACs and FLOPs in billions; "
               "MACs = multiply-adds (the paper's “FLOPs”), FLOPs = 2 × MACs. Ratios are to the current spec (first "
               "row). Published figures: RetinaNet on COCO, shown "
               "for built-ins at their published input size.")
    frame = comparison_rows(specs, sizes, head)
    show_table(frame, "compare_table", "comparison.csv", hide_index=True, width="stretch",
               column_config=COMPARE_COLUMNS, more=COMPARE_MORE)
    per_row = 2
    for start in range(0, len(specs), per_row):
        columns = st.columns(per_row)
        for offset, (place, other, size) in enumerate(zip(columns, specs[start:start + per_row],
                                                          sizes[start:start + per_row])):
            with place:
                result = counts.analysis_of(other, size, head)
                figure = graph_figure(other, size, counts.block_costs(other, result), height=360,
                                      title=f"{other.name} · {size}px", width_hint=360, legend=False)  # half the page
                st.plotly_chart(figure, key=f"compare_graph_{start + offset}",
                                config={"displaylogo": False})
    st.plotly_chart(scatter_figure(frame, head), key="compare_scatter", config={"displaylogo": False})
    figure = latency_figure(frame)
    if figure is None:
        st.caption("No latency measured for these specs at these sizes yet: measure them in the Latency tab to add "
                   "MACs vs latency here.")
    else:
        st.plotly_chart(figure, key="compare_latency", config={"displaylogo": False})
