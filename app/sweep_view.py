"""A sweep's points (records of `analysis.sweep.grid.point_record`) as a table and two plots: latency vs input size
per model, and MACs vs latency with the Pareto front (`analysis.sweep.pareto`)."""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from spinescope.analysis.sweep.pareto import pareto_front
from spinescope.app.markup import escape_html
from spinescope.spinenet.input_size import hw, size_label

MIB, GIB = 2 ** 20, 2 ** 30
PLOT_HEIGHT = 380
# The title sits below the plot's toolbar (top right, on hover) and starts at the left, so that the toolbar covers
# neither it nor the plot; pixels from the top.
TOP_MARGIN, TITLE_FROM_TOP = 64, 46
COLOURS = ("#3b6fb6", "#e8833a", "#3a9a5b", "#8e5ea2", "#c0392b", "#7f7f7f", "#17becf", "#bcbd22")


def series_name(record: dict) -> str:
    """Returns the plain-text name of a record's series: model, batch and precision, e.g. 'SpineNet-49 b1 fp32'."""
    return f"{record['name']} b{record['batch']} {record['precision']}"


def points_frame(records: list[dict]) -> pd.DataFrame:
    """One row per point: model, input px, batch, precision, median / p10 / p90 ms, images/s, GMACs per forward
    pass (batch x per image), inference MiB (measured), training GiB (estimated), history id."""
    return pd.DataFrame([{
        "model": record["name"], "input px": record["input_size"], "batch": record["batch"],
        "precision": record["precision"], "median ms": record["median_ms"], "p10 ms": record["p10_ms"],
        "p90 ms": record["p90_ms"], "images/s": record["throughput"],
        "GMACs per pass": record["macs"] * record["batch"] / 1e9, "inference MiB": record["peak_memory_bytes"] / MIB,
        "training GiB (est.)": record["train_peak_bytes"] / GIB, "history id": record.get("history_id"),
    } for record in records])


def plot_layout(title: str) -> dict:
    """Returns the layout the two sweep plots share: `title` at the top left, below the toolbar; the legend below
    the plot; axis titles given room (automargin) so that none is clipped."""
    return dict(height=PLOT_HEIGHT, margin=dict(l=10, r=10, t=TOP_MARGIN, b=10), plot_bgcolor="white",
                title=dict(text=title, font=dict(size=14), x=0, xanchor="left", xref="paper", yref="container",
                           y=1 - TITLE_FROM_TOP / PLOT_HEIGHT, yanchor="middle"),
                legend=dict(orientation="h", y=-0.25))


def latency_vs_size_figure(records: list[dict]) -> go.Figure:
    """Median latency (ms, whiskers p10-p90) against the input size, one line per model, batch and precision."""
    figure = go.Figure()
    series: dict[str, list[dict]] = {}
    for record in records:
        series.setdefault(series_name(record), []).append(record)
    for index, (name, group) in enumerate(series.items()):
        group = sorted(group, key=lambda record: math.prod(hw(record["input_size"])))
        figure.add_trace(go.Scatter(
            x=[math.sqrt(math.prod(hw(r["input_size"]))) for r in group], y=[r["median_ms"] for r in group],
            customdata=[size_label(r["input_size"]) for r in group], mode="lines+markers",
            name=escape_html(name), line=dict(color=COLOURS[index % len(COLOURS)]),
            error_y=dict(type="data", symmetric=False, array=[r["p90_ms"] - r["median_ms"] for r in group],
                         arrayminus=[r["median_ms"] - r["p10_ms"] for r in group]),
            hovertemplate="%{customdata} px: %{y:.2f} ms<extra>%{fullData.name}</extra>"))
    figure.update_layout(plot_layout("Latency vs input size (median; whiskers p10–p90)"),
                         xaxis=dict(title="input size (px; √(H×W) if not square)", gridcolor="#eeeeee",
                                    automargin=True),
                         yaxis=dict(title="ms per forward pass", gridcolor="#eeeeee", rangemode="tozero",
                                    automargin=True))
    return figure


def macs_vs_latency_figure(records: list[dict]) -> go.Figure:
    """MACs per forward pass (billions) against the median latency (ms) of every point; the Pareto front (most
    MACs for the time) joined by a line and its points ringed."""
    figure = go.Figure()
    pairs = [(r["macs"] * r["batch"], r["median_ms"]) for r in records]
    front = pareto_front(pairs)
    series: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        series.setdefault(series_name(record), []).append(index)
    for colour_index, (name, indices) in enumerate(series.items()):
        figure.add_trace(go.Scatter(
            x=[records[i]["median_ms"] for i in indices], y=[pairs[i][0] / 1e9 for i in indices], mode="markers",
            name=escape_html(name), marker=dict(size=9, color=COLOURS[colour_index % len(COLOURS)]),
            customdata=[[records[i]["input_size"]] for i in indices],
            hovertemplate="%{customdata[0]} px: %{x:.2f} ms, %{y:.2f} GMACs<extra>%{fullData.name}</extra>"))
    figure.add_trace(go.Scatter(
        x=[records[i]["median_ms"] for i in front], y=[pairs[i][0] / 1e9 for i in front], mode="lines+markers",
        name="Pareto front (most MACs for the time)", line=dict(color="#222222", dash="dot", shape="hv"),
        marker=dict(size=16, symbol="circle-open", color="#222222", line=dict(width=2)), hoverinfo="skip"))
    figure.update_layout(plot_layout("MACs vs latency (one forward pass of the batch)"),
                         xaxis=dict(title="median latency (ms)", gridcolor="#eeeeee", rangemode="tozero",
                                    automargin=True),
                         yaxis=dict(title="GMACs per pass", gridcolor="#eeeeee", rangemode="tozero",
                                    automargin=True))
    return figure
