"""Latency results from the history database (analysis.latency.history) as tables and plots for the app."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analysis.latency.history import list_results
from app.markup import escape_html
from spinenet.spec import Spec, spec_hash

MIB = 2 ** 20


def latest_latency_ms(spec: Spec, input_size: int, head: str | None = None) -> float | None:
    """Returns the median latency (ms) of the latest stored run of this architecture at this input size (with this
    head when given; batch 1), or None when there is none or the history cannot be read."""
    try:
        entries = list_results(limit=200, spec_hash=spec_hash(spec))
    except Exception:  # noqa: BLE001 - a missing or unreadable history just means "not measured"
        return None
    for entry in entries:
        if entry.input_size == input_size and entry.batch == 1 and (head is None or entry.head == head):
            return entry.median_ms
    return None


def results_frame(results) -> pd.DataFrame:
    """Returns a table of LatencyResult or HistoryEntry objects: one row each, times in ms, memory in MiB."""
    rows = []
    for result in results:
        rows.append({
            "when (UTC)": result.created_at.replace("T", " ")[:19],
            "model": result.label, "input px": result.input_size, "batch": result.batch, "head": result.head,
            "device": result.device_name, "precision": result.precision, "threads": result.threads,
            "median ms": result.median_ms, "p10 ms": result.p10_ms, "p90 ms": result.p90_ms,
            "mean ms": result.mean_ms, "images/s": result.throughput,
            "peak memory MiB": result.peak_memory_bytes / MIB, "ratio to first": result.ratio_to_first,
            "run": result.run_id,
        })
    return pd.DataFrame(rows)


def results_figure(frame: pd.DataFrame) -> go.Figure:
    """Median latency per model of one run, with p10-p90 whiskers."""
    figure = go.Figure(go.Bar(
        x=[escape_html(model) for model in frame["model"]], y=frame["median ms"],
        error_y=dict(type="data", symmetric=False, array=frame["p90 ms"] - frame["median ms"],
                     arrayminus=frame["median ms"] - frame["p10 ms"]),
        marker_color="#3b6fb6", text=[f"{value:.1f} ms" for value in frame["median ms"]], textposition="outside",
        hovertemplate="%{x}: %{y:.2f} ms (median)<extra></extra>"))
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white",
                         title=dict(text="Median latency per forward pass (whiskers: p10–p90)", font=dict(size=14)),
                         yaxis=dict(title="ms", gridcolor="#eeeeee", rangemode="tozero"))
    return figure


def history_figure(frame: pd.DataFrame) -> go.Figure:
    """Median latency of every stored result over time, one series per model label."""
    figure = go.Figure()
    for (model, size), group in frame.sort_values("when (UTC)").groupby(["model", "input px"], sort=False):
        figure.add_trace(go.Scatter(
            x=group["when (UTC)"], y=group["median ms"], mode="lines+markers", name=f"{escape_html(model)} @{size}",
            error_y=dict(type="data", symmetric=False, array=group["p90 ms"] - group["median ms"],
                         arrayminus=group["median ms"] - group["p10 ms"]),
            hovertemplate="%{x}<br>%{y:.2f} ms<extra>%{fullData.name}</extra>"))
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white",
                         title=dict(text="History: median latency over time", font=dict(size=14)),
                         yaxis=dict(title="ms", gridcolor="#eeeeee", rangemode="tozero"),
                         xaxis=dict(gridcolor="#eeeeee", type="date", title="when (UTC)", nticks=8,
                                    tickformatstops=[dict(dtickrange=[None, 60_000], value="%H:%M:%S"),
                                                     dict(dtickrange=[60_000, 86_400_000], value="%H:%M<br>%b %d"),
                                                     dict(dtickrange=[86_400_000, None], value="%b %d<br>%Y")]),
                         legend=dict(orientation="h", y=-0.3))
    return figure
