"""Compare: the current spec beside others (built-ins or saved designs) at the same input size: graphs side by
side, a metrics table with ratios and the published figures, and MACs vs params (and vs latency where measured)."""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from spinescope.analysis.comparison.compare import builtin_name, relative_receptive_fields
from spinescope.analysis.comparison.published import published_for, published_rows
from spinescope.app import counts, session, sidebar
from spinescope.app.graph_figure import graph_figure
from spinescope.app.guard import one_line
from spinescope.app.identity import display_name
from spinescope.app.latency_view import latest_latency_ms
from spinescope.app.markup import escape_html, escape_md
from spinescope.app.tables import INPUT_PX_COLUMN, column, fitted_columns, table as show_table
from spinescope.app.units import ratio
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.input_size import size_label, size_text, size_to_json
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


def comparison_rows(specs: list[Spec], input_sizes: list[int], head: str,
                    names: list[str] | None = None) -> pd.DataFrame:
    """Returns one row per spec: measured params/MACs (backbone and with head), ratios to the first spec,
    published figures for built-ins at that input size, and the latest measured latency if any. `names`: the
    model column (default: each spec's `display_name`)."""
    rows, first = [], None
    for spec, size, name in zip(specs, input_sizes, names or [display_name(spec) for spec in specs]):
        result = counts.analysis_of(spec, size, head)
        first = first or result
        builtin = builtin_name(spec)
        published = published_for(builtin, size) if builtin else None
        rows.append({
            "model": name, "input px": size_to_json(size),
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


def output_rows(specs: list[Spec], input_sizes: list, head: str, names: list[str] | None = None) -> pd.DataFrame:
    """Returns one row per spec and output level (P3..P7): the output's shape (channels x height x width) and its
    theoretical receptive field in pixels and as a multiple of the input side, as `spinescope compare` prints
    them (`analysis.comparison.compare`). `names`: the model column (default: each spec's `display_name`)."""
    rows = []
    for spec, size, name in zip(specs, input_sizes, names or [display_name(spec) for spec in specs]):
        result = counts.analysis_of(spec, size, head)
        relative = relative_receptive_fields(spec, result.input_size)
        for level in sorted(result.outputs, key=lambda level: int(level[1:])):
            rows.append({"model": name, "input px": size_to_json(size), "output": level,
                         "shape (C×H×W)": "×".join(map(str, result.outputs[level])),
                         "receptive field px": result.receptive_field.get(level),
                         "receptive field × input side": relative.get(level)})
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


# Label placement for the MACs-vs-params plot: the plot area's size assumed in pixels (the smallest it is at
# 1366 px; a larger one only moves the dots apart), the font's average character width (regular and bold) and
# line height as fractions of its size (Source Sans measures about 0.42 and 0.46 in Chromium: room for another).
PLOT_PIXELS = (780, 330)
CHAR_WIDTH, BOLD_CHAR_WIDTH, LINE_HEIGHT = 0.5, 0.55, 1.35
# Where a label may go, tried in order (`_candidates`): beside its dot (8 sides), then detached at growing gaps
# (pixels) in 12 directions with a thin leader line to its dot.
LEADER_GAPS = (12, 24, 40, 60, 85)
LEADER_ANGLES = tuple(range(0, 360, 30))
NEAREST_MARGIN = 4  # pixels: every other dot is at least this much farther from a label than the label's own dot
LEADER_COLOUR = "#9a9a9a"
CURRENT_COLOUR, OTHER_COLOUR, PUBLISHED_COLOUR = "#e8833a", "#3b6fb6", "#999999"


def _box_distance(x: float, y: float, box: tuple) -> float:
    """Distance in pixels from (x, y) to the nearest point of box (left, top, right, bottom)."""
    dx = max(box[0] - x, 0.0, x - box[2])
    dy = max(box[1] - y, 0.0, y - box[3])
    return math.hypot(dx, dy)


def _overlaps(a: tuple, b: tuple, pad: float = 0.0) -> bool:
    return a[0] < b[2] + pad and b[0] < a[2] + pad and a[1] < b[3] + pad and b[1] < a[3] + pad


def _segment_hits_box(x0: float, y0: float, x1: float, y1: float, box: tuple) -> bool:
    """Whether the segment from (x0, y0) to (x1, y1) passes through the box (sampled every 2 pixels)."""
    steps = max(2, int(math.hypot(x1 - x0, y1 - y0) / 2))
    return any(box[0] <= x0 + (x1 - x0) * i / steps <= box[2] and box[1] <= y0 + (y1 - y0) * i / steps <= box[3]
               for i in range(steps + 1))


def _candidates(radius: float):
    """Yields (dx, dy, x anchor, y anchor, detached): where a label's anchor goes relative to its dot's centre
    (pixels, y down) and which side of the label it is. The anchor is the label's side nearest the dot, so that a
    label narrower than estimated still starts right by its dot."""
    near = 0.7 * radius + 1
    yield near, -near, "left", "bottom", False  # top right
    yield near, near, "left", "top", False  # bottom right
    yield -near, -near, "right", "bottom", False  # top left
    yield -near, near, "right", "top", False  # bottom left
    yield radius + 3, 0.0, "left", "middle", False
    yield -(radius + 3), 0.0, "right", "middle", False
    yield 0.0, -(radius + 2), "center", "bottom", False
    yield 0.0, radius + 2, "center", "top", False
    for gap in LEADER_GAPS:
        for angle in LEADER_ANGLES:
            ux, uy = math.cos(math.radians(angle)), -math.sin(math.radians(angle))
            x_anchor = "left" if ux > 0.38 else "right" if ux < -0.38 else "center"
            y_anchor = "top" if uy > 0.38 else "bottom" if uy < -0.38 else "middle"
            yield ux * (radius + gap), uy * (radius + gap), x_anchor, y_anchor, True


def _anchored_box(x: float, y: float, width: float, height: float, x_anchor: str, y_anchor: str) -> tuple:
    """The (left, top, right, bottom) box of a label whose `x_anchor`/`y_anchor` side is at pixel (x, y)."""
    left = x - {"left": 0.0, "center": width / 2, "right": width}[x_anchor]
    top = y - {"top": 0.0, "middle": height / 2, "bottom": height}[y_anchor]
    return left, top, left + width, top + height


def place_labels(labels: list[tuple], dots: list[tuple], x_range: list[float], y_range: list[float]) -> list[tuple]:
    """Returns (dx, dy, x anchor, y anchor, detached) per label: where its anchor side goes relative to its dot's
    centre (pixels, y down) and whether it needs a leader line to its dot.

    labels: (dot index, text without markup, font size, bold), the most important first; dots: (x, y, radius in
    pixels) in data units of log axes over `x_range` and `y_range`. Each label takes the first place (beside its
    dot, then farther off in every direction) that is inside the plot, overlaps no label placed before it and no
    dot nor any leader line, whose leader line crosses no other dot or label, and from which its own dot is the
    nearest by NEAREST_MARGIN pixels (dots at the same place as its own aside); where none is, the place that
    breaks the fewest of these."""
    width, height = PLOT_PIXELS
    (x0, x1), (y0, y1) = (map(math.log10, x_range)), (map(math.log10, y_range))
    centres = [((math.log10(x) - x0) / (x1 - x0) * width, (y1 - math.log10(y)) / (y1 - y0) * height)
               for x, y, _ in dots]
    dot_boxes = [(cx - r, cy - r, cx + r, cy + r) for (cx, cy), (*_, r) in zip(centres, dots)]
    placed, leaders, chosen = [], [], []
    for dot, text, font, bold in labels:
        cx, cy = centres[dot]
        radius = dots[dot][2]
        label_width = (BOLD_CHAR_WIDTH if bold else CHAR_WIDTH) * font * len(text) + 4
        label_height = LINE_HEIGHT * font + 2
        others = [index for index, (ox, oy) in enumerate(centres) if math.hypot(ox - cx, oy - cy) > 3]
        best = None
        for candidate in _candidates(radius):
            dx, dy, x_anchor, y_anchor, detached = candidate
            box = _anchored_box(cx + dx, cy + dy, label_width, label_height, x_anchor, y_anchor)
            own = _box_distance(cx, cy, box)
            faults = 0
            if not (box[0] >= 0 and box[2] <= width and box[1] >= 0 and box[3] <= height):
                faults += 100
            faults += 100 * sum(_overlaps(box, other, 2) for other in placed)
            faults += 100 * sum(_overlaps(box, other, 1) for other in dot_boxes)
            faults += 10 * sum(_box_distance(*centres[index], box) < own + NEAREST_MARGIN for index in others)
            faults += 10 * sum(_segment_hits_box(*leader, box) for leader in leaders)
            if detached:
                end = (cx + dx, cy + dy)
                faults += 10 * sum(_segment_hits_box(cx, cy, *end, dot_boxes[index]) for index in others)
                faults += 10 * sum(_segment_hits_box(cx, cy, *end, other) for other in placed)
            if best is None or faults < best[0]:
                best = (faults, candidate, box)
            if faults == 0:
                break
        placed.append(best[2])
        chosen.append(best[1])
        if best[1][4]:
            leaders.append((cx, cy, cx + best[1][0], cy + best[1][1]))
    return chosen


def _label_annotation(x: float, y: float, text: str, font: dict, place: tuple, radius: float) -> dict:
    """A label `text` (HTML, escaped) for the dot at (x, y) on log axes, its anchor side `place` (dx, dy, x anchor,
    y anchor, detached; pixels, y down) from the dot's centre; a detached label gets a thin leader line ending at
    the dot's border."""
    dx, dy, x_anchor, y_anchor, detached = place
    common = dict(x=math.log10(x), y=math.log10(y), xref="x", yref="y", text=text, font=font, xanchor=x_anchor,
                  yanchor=y_anchor, borderpad=0)
    if detached:
        return dict(common, showarrow=True, ax=dx, ay=dy, axref="pixel", ayref="pixel", arrowhead=0,
                    arrowwidth=0.8, arrowcolor=LEADER_COLOUR, standoff=radius + 1)
    return dict(common, showarrow=False, xshift=dx, yshift=-dy)


def published_label(row: dict, several: bool) -> str:
    """Returns a published model's label, e.g. 'SpineNet-49 (AP 42.8)'; with its input size ('SpineNet-49 @896
    (AP 45.3)') where the model has several published points. Without an AP under the paper's main protocol, the
    protocol-C AP where published, else 'AP not published'."""
    name = load_builtin(row["builtin"]).name + (f" @{size_label(row['input_size'])}" if several else "")
    if row.get("ap") is not None:
        return f"{name} (AP {row['ap']})"
    if row.get("ap_protocol_c") is not None:
        return f"{name} (AP {row['ap_protocol_c']}, protocol C)"
    return f"{name} (AP not published)"


def scatter_figure(frame: pd.DataFrame, head: str, builtins: list[str | None] | None = None) -> go.Figure:
    """MACs vs params of the compared specs (the current one first), with the paper's published models for
    context. Every dot is labelled next to itself (a detached label has a leader line to its dot): a measured spec
    by its name (and its published AP where it has one), a published model by its name and AP ('SpineNet-49 (AP
    42.8)'); a published model measured here at its published size is named by the measured dot's label.
    `builtins`: the built-in each row's spec is (None for others), to find those. Every trace is in the legend."""
    builtins = list(builtins) if builtins is not None else [None] * len(frame)
    figure = go.Figure()
    names = [f"<b>{escape_html(name)}</b>" + (f" (AP {ap})" if pd.notna(ap) else "")
             for name, ap in zip(frame["model"], frame["published AP"])]
    plain_names = [f"{name}" + (f" (AP {ap})" if pd.notna(ap) else "")
                   for name, ap in zip(frame["model"], frame["published AP"])]
    xs, ys = list(frame["params with head (M)"]), list(frame["MACs with head (B)"])
    sizes = [size_label(size) for size in frame["input px"]]
    published = []
    if head == "retinanet":
        published = [row for row in published_rows() if row.get("params_m") and row.get("macs_b")]
    measured_here = {(builtin, size) for builtin, size in zip(builtins, sizes) if builtin}
    points_per_model = {}
    for row in published:
        points_per_model[row["builtin"]] = points_per_model.get(row["builtin"], 0) + 1
    published_texts = [published_label(row, points_per_model[row["builtin"]] > 1) for row in published]
    all_x = xs + [row["params_m"] for row in published]
    all_y = ys + [row["macs_b"] for row in published]
    x_range = [min(all_x) / 1.6, max(all_x) * 2.5]
    y_range = [min(all_y) / 1.6, max(all_y) * 1.8]
    # The measured specs are labelled first; every published model then, unless it is measured here at its
    # published size (the same place: the measured label names it and says its AP).
    dots = [(x, y, 6.5) for x, y in zip(xs, ys)] + [(row["params_m"], row["macs_b"], 5) for row in published]
    labels = [(index, text, 11, True) for index, text in enumerate(plain_names)]
    labels += [(len(xs) + index, text, 9, False) for index, (row, text) in enumerate(zip(published, published_texts))
               if (row["builtin"], size_label(row["input_size"])) not in measured_here]
    places = place_labels(labels, dots, x_range, y_range)
    annotations = []
    for (dot, _, font, bold), place in zip(labels, places):
        x, y, radius = dots[dot]
        if bold:
            text, style = names[dot], dict(size=11, color="#222222")
        else:
            text, style = escape_html(published_texts[dot - len(xs)]), dict(size=9, color="#777777")
        annotations.append(_label_annotation(x, y, text, style, place, radius))
    hover = "%{customdata}<br>%{x:.2f}M params, %{y:.2f}B MACs<extra>%{fullData.name}</extra>"
    figure.add_trace(go.Scatter(
        x=xs[:1], y=ys[:1], mode="markers", name="current spec (measured here)", customdata=names[:1],
        marker=dict(size=13, color=CURRENT_COLOUR), hovertemplate=hover))
    if len(xs) > 1:
        figure.add_trace(go.Scatter(
            x=xs[1:], y=ys[1:], mode="markers", name="compared specs (measured here)", customdata=names[1:],
            marker=dict(size=13, color=OTHER_COLOUR), hovertemplate=hover))
    if published:  # drawn over the measured dots: a published point under a measured one stays visible
        figure.add_trace(go.Scatter(
            x=[row["params_m"] for row in published], y=[row["macs_b"] for row in published],
            mode="markers", name="published (paper / zoo)",
            marker=dict(symbol="circle-open", size=10, color=PUBLISHED_COLOUR),
            customdata=[f"{escape_html(text)} at {size_text(row['input_size'])}"
                        for row, text in zip(published, published_texts)],
            hovertemplate="%{customdata}<br>%{x:.1f}M params, %{y:.1f}B MACs<extra>published</extra>"))
    x_ticks, y_ticks = log_ticks(*x_range), log_ticks(*y_range)
    figure.update_layout(height=480, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white",
                         title=dict(text="MACs vs params (with head), log scales", font=dict(size=14)),
                         annotations=annotations,
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
OUTPUT_COLUMNS = {
    "model": st.column_config.TextColumn("model", width=110),
    "input px": INPUT_PX_COLUMN,
    "output": st.column_config.TextColumn("output", help="output level (stride 2^level pixels)", width=52),
    "shape (C×H×W)": st.column_config.TextColumn("C×H×W", help="output shape: channels × height × width (pixels)",
                                                 width=96),
    "receptive field px": column("field px", "theoretical receptive field, pixels (not clipped to the image)",
                                 "%d", width=64),
    "receptive field × input side": column("× side", "receptive field as a multiple of the input side (of its "
                                           "longer side when not square)", "%.2f×", width=60),
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
    names = [session.current_name()] + [display_name(other) for other in others]
    sizes = [spec.input_size if own_sizes else input_size for spec in specs]
    head_name = "RetinaNet" if head == "retinanet" else "classification"
    st.caption(f"Backbone (bb) and backbone + {head_name} head. Params in millions, MACs and FLOPs in billions; "
               "MACs = multiply-adds (the paper's “FLOPs”), FLOPs = 2 × MACs. Ratios are to the current spec (first "
               "row). Published figures: RetinaNet on COCO, shown "
               "for built-ins at their published input size.")
    frame = comparison_rows(specs, sizes, head, names)
    show_table(frame, "compare_table", "comparison.csv", hide_index=True, width="stretch",
               column_config=fitted_columns(frame, COMPARE_COLUMNS, "compare_table", COMPARE_MORE), more=COMPARE_MORE)
    st.caption("Outputs: the shape of each output level (channels × height × width, pixels) and its theoretical "
               "receptive field in pixels and as a multiple of the input side (of its longer side when not "
               "square), as `spinescope compare` prints them.")
    outputs = output_rows(specs, sizes, head, names)
    show_table(outputs, "compare_outputs", "comparison-outputs.csv", hide_index=True, width="stretch",
               column_config=fitted_columns(outputs, OUTPUT_COLUMNS, "compare_outputs"))
    per_row = 2
    for start in range(0, len(specs), per_row):
        columns = st.columns(per_row)
        for offset, (place, other, size, name) in enumerate(zip(columns, specs[start:start + per_row],
                                                                sizes[start:start + per_row],
                                                                names[start:start + per_row])):
            with place:
                result = counts.analysis_of(other, size, head)
                figure = graph_figure(other, size, counts.block_costs(other, result), height=360, head=head,
                                      title=f"{name} · {size_text(size)}", width_hint=360,
                                      legend=False)  # half the page
                st.plotly_chart(figure, key=f"compare_graph_{start + offset}",
                                config={"displaylogo": False})
    st.plotly_chart(scatter_figure(frame, head, [builtin_name(other) for other in specs]), key="compare_scatter",
                    config={"displaylogo": False})
    figure = latency_figure(frame)
    if figure is None:
        st.caption("No latency measured for these specs at these sizes yet: measure them in the Latency tab to add "
                   "MACs vs latency here.")
    else:
        st.plotly_chart(figure, key="compare_latency", config={"displaylogo": False})
