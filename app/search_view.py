"""The Search tab's figures and table: a population's distributions (the empirical distribution function of MACs,
params and the receptive field of each output level, with SpineNet-49's and ResNet-50-FPN's values marked), a run's
candidates as MACs vs objective with the Pareto front, and the candidates as a table."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from spinescope.analysis.search import edf, pareto_rows, summarize
from spinescope.app.markup import escape_html
from spinescope.app.sweep_view import COLOURS, plot_layout

# metric key -> (panel title, scale): MACs in billions of multiply-adds, params in millions, receptive fields in px.
PANELS = {"macs": ("MACs (G multiply-adds)", 1e9), "params": ("params (M)", 1e6)}
RF_LEVELS = ("P3", "P4", "P5", "P6", "P7")
REFERENCE_COLOURS = {"SpineNet-49": "#c0392b", "ResNet-50-FPN": "#3a9a5b"}
ORIGIN_COLOURS = {"sample": COLOURS[0], "mutation": COLOURS[1]}
COLUMNS = 4


def panels(metrics: list[dict]) -> dict[str, tuple[str, float]]:
    """Returns {metric key: (title, scale)} of the metrics every row has: macs, params, rf_P3..rf_P7."""
    wanted = dict(PANELS, **{f"rf_{level}": (f"{level} receptive field (px)", 1) for level in RF_LEVELS})
    return {key: value for key, value in wanted.items()
            if metrics and all(isinstance(row.get(key), (int, float)) for row in metrics)}


def distributions_figure(metrics: list[dict], references: dict[str, dict], title: str) -> go.Figure:
    """One panel per metric (`panels`): the population's EDF (fraction of candidates <= x; x in the panel's unit)
    and each reference's value as a vertical line, named 'NAME: VALUE (PCT% below)'."""
    shown = panels(metrics)
    rows = max(1, -(-len(shown) // COLUMNS))
    figure = make_subplots(rows=rows, cols=COLUMNS, subplot_titles=[label for label, _ in shown.values()],
                           horizontal_spacing=0.06, vertical_spacing=0.22)
    for index, (key, (label, scale)) in enumerate(shown.items()):
        row, col = index // COLUMNS + 1, index % COLUMNS + 1
        xs, ys = edf([item[key] for item in metrics])
        figure.add_trace(go.Scatter(x=[x / scale for x in xs], y=ys, mode="lines", line=dict(color="#3b6fb6",
                                    shape="hv"), name=f"population ({len(metrics)})", legendgroup="population",
                                    showlegend=index == 0, meta=key,
                                    hovertemplate="%{x:.4g}: %{y:.0%} of the population at or below<extra></extra>"),
                         row=row, col=col)
        for name, values in references.items():
            if key not in values:
                continue
            value = values[key] / scale
            below = sum(1 for item in metrics if item[key] < values[key]) / len(metrics)
            figure.add_trace(go.Scatter(x=[value, value], y=[0, 1], mode="lines", meta=key,
                                        line=dict(color=REFERENCE_COLOURS.get(name, "#7f7f7f"), dash="dash"),
                                        name=escape_html(name), legendgroup=escape_html(name),
                                        showlegend=index == 0,
                                        hovertemplate=escape_html(f"{name}: {value:.4g} ({below:.0%} of the "
                                                                  "population below)") + "<extra></extra>"),
                             row=row, col=col)
    height = 260 * rows + 90
    layout = plot_layout(title)
    layout.update(height=height, legend=dict(orientation="h", y=-0.08 * (3 - rows)))
    layout["title"]["y"] = 1 - 30 / height
    figure.update_layout(layout, margin=dict(l=10, r=10, t=70, b=10))
    figure.update_yaxes(range=[0, 1.02], gridcolor="#eeeeee", tickformat=".0%")
    figure.update_xaxes(gridcolor="#eeeeee")
    return figure


def scatter_figure(rows: list[dict], objective_label: str, references: dict[str, tuple[float, float]]) -> go.Figure:
    """MACs (billions of multiply-adds, backbone + head) against the objective of every finished candidate, one
    trace per origin (sample, mutation); the Pareto front (`pareto_rows`: best objective for the MACs) joined by a
    line; `references` {name: (MACs, objective)} as stars (only where the objective is defined for them)."""
    figure = go.Figure()
    done = [row for row in rows if row["status"] == "done"]
    for origin in sorted({row["origin"] for row in done}):
        group = [row for row in done if row["origin"] == origin]
        figure.add_trace(go.Scatter(
            x=[row["macs"] / 1e9 for row in group], y=[row["objective"] for row in group], mode="markers",
            name=escape_html(origin), marker=dict(size=8, color=ORIGIN_COLOURS.get(origin, COLOURS[2])),
            customdata=[[row["idx"], row["params"] / 1e6] for row in group],
            hovertemplate="candidate %{customdata[0]}: %{x:.2f} GMACs, %{customdata[1]:.2f} M params, "
                          "objective %{y:.4g}<extra></extra>"))
    front = pareto_rows(rows)
    figure.add_trace(go.Scatter(
        x=[row["macs"] / 1e9 for row in front], y=[row["objective"] for row in front], mode="lines+markers",
        name="Pareto front (best objective for the MACs)", line=dict(color="#222222", dash="dot", shape="hv"),
        marker=dict(size=14, symbol="circle-open", color="#222222", line=dict(width=2)),
        customdata=[row["idx"] for row in front], hovertemplate="candidate %{customdata}<extra></extra>"))
    for name, (macs, value) in references.items():
        figure.add_trace(go.Scatter(x=[macs / 1e9], y=[value], mode="markers", name=escape_html(name),
                                    marker=dict(size=13, symbol="star", color=REFERENCE_COLOURS.get(name, "#7f7f7f")),
                                    hovertemplate=escape_html(name) + ": %{x:.2f} GMACs, %{y:.4g}<extra></extra>"))
    figure.update_layout(plot_layout("MACs vs objective (every finished candidate)"),
                         xaxis=dict(title="GMACs (billions of multiply-adds, backbone + head, batch 1)",
                                    gridcolor="#eeeeee", automargin=True),
                         yaxis=dict(title=escape_html(objective_label), gridcolor="#eeeeee", automargin=True))
    return figure


def candidates_frame(rows: list[dict]) -> pd.DataFrame:
    """One row per stored candidate: idx, origin, parent (index), move, GMACs, M params, P3 RF px, objective,
    status, name (error text for a failed one)."""
    return pd.DataFrame([{
        "idx": row["idx"], "origin": row["origin"], "parent": row["parent_idx"], "move": row["move"] or "",
        "GMACs": row["macs"] / 1e9, "M params": row["params"] / 1e6, "P3 RF px": row["metrics"].get("rf_P3"),
        "objective": row["objective"], "status": row["status"],
        "name": row["name"] if row["status"] == "done" else f"{row['name']}: {row['error'] or ''}",
    } for row in rows], columns=["idx", "origin", "parent", "move", "GMACs", "M params", "P3 RF px", "objective",
                                 "status", "name"])


def summary_frame(metrics: list[dict], references: dict[str, dict]) -> pd.DataFrame:
    """One row per metric of `panels` (in its unit: GMACs, M params, px): the population's min, p10, median, p90 and
    max (`summarize`), and each reference's value and percentile (% of the population below it, ties half)."""
    summary = summarize(metrics, references)
    out = []
    for key, (label, scale) in panels(metrics).items():
        item = summary[key]
        row = {"metric": label, **{name: item["quantiles"][q] / scale for name, q in
                                   (("min", 0.0), ("p10", 0.1), ("median", 0.5), ("p90", 0.9), ("max", 1.0))}}
        for name, ref in item["references"].items():
            row[name] = ref["value"] / scale
            row[f"{name} %"] = ref["percentile"]
        out.append(row)
    return pd.DataFrame(out)
