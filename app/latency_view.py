"""Latency results from the history database (analysis.latency.history) as tables and plots for the app."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from spinescope.analysis.latency.history import list_results
from spinescope.app.identity import SHORT_HASH_DIGITS
from spinescope.app.markup import escape_html
from spinescope.spinenet.input_size import InputSize, size_text, size_to_json
from spinescope.spinenet.spec import Spec, spec_hash

MIB = 2 ** 20


def latest_latency_ms(spec: Spec, input_size: InputSize, head: str | None = None) -> float | None:
    """Returns the median latency (ms) of the latest stored run of this architecture at this input size (with this
    head when given; batch 1), or None when there is none or the history cannot be read."""
    try:
        entries = list_results(limit=200, spec_hash=spec_hash(spec))
    except Exception:  # noqa: BLE001 - a missing or unreadable history just means "not measured"
        return None
    for entry in entries:
        if entry.input_size == size_to_json(input_size) and entry.batch == 1 and (head is None or entry.head == head):
            return entry.median_ms
    return None


def short_hash(spec_hash: str) -> str:
    """Returns the first SHORT_HASH_DIGITS hex digits of a spec's content hash ('' for a row stored without one)."""
    return (spec_hash or "")[:SHORT_HASH_DIGITS]


def results_frame(results) -> pd.DataFrame:
    """Returns a table of LatencyResult or HistoryEntry objects: one row each, times in ms, memory in MiB, the
    spec's content hash in full ("spec hash") and short ("spec")."""
    rows = []
    for result in results:
        rows.append({
            "when (UTC)": result.created_at.replace("T", " ")[:19],
            "model": result.label, "spec": short_hash(result.spec_hash), "spec hash": result.spec_hash,
            "input px": size_to_json(result.input_size), "batch": result.batch, "head": result.head,
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


SINGLE_TIME_SPAN = pd.Timedelta(minutes=10)  # the history plot's time axis when all its results share one time


def history_figure(frame: pd.DataFrame) -> go.Figure:
    """Median latency (ms) of every stored result over time, one series per architecture (the spec's content hash,
    so an edited spec and the built-in it started from are two lines even under one label), input size and head.
    A series is named by its newest label and short hash. The time axis keeps plotly's own date ticks, which suit
    the span (times of day with the day named once for results seconds or hours apart; days with the year named
    where it starts for results days apart); hover shows the full UTC time."""
    figure = go.Figure()
    ordered = frame.sort_values("when (UTC)").assign(series=series_keys)
    for _, group in ordered.groupby("series", sort=False):
        figure.add_trace(go.Scatter(
            x=group["when (UTC)"], y=group["median ms"], mode="lines+markers", name=series_name(group.iloc[-1]),
            error_y=dict(type="data", symmetric=False, array=group["p90 ms"] - group["median ms"],
                         arrayminus=group["median ms"] - group["p10 ms"]),
            hovertemplate="%{x}<br>%{y:.2f} ms<extra>%{fullData.name}</extra>"))
    figure.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white",
                         title=dict(text="History: median latency over time", font=dict(size=14)),
                         yaxis=dict(title="ms", gridcolor="#eeeeee", rangemode="tozero"),
                         xaxis=dict(gridcolor="#eeeeee", type="date", title="when (UTC)", nticks=8,
                                    hoverformat="%Y-%m-%d %H:%M:%S"),
                         legend=dict(orientation="h", y=-0.3))
    times = pd.to_datetime(ordered["when (UTC)"])
    if len(times) and times.max() == times.min():  # one moment: plotly would tick sub-millisecond times around it
        figure.update_xaxes(range=[times.min() - SINGLE_TIME_SPAN / 2, times.min() + SINGLE_TIME_SPAN / 2])
    return figure


def series_keys(frame: pd.DataFrame) -> pd.Series:
    """Returns each history row's series: its spec hash (its label for a row stored without one), input size and
    head."""
    identity = frame["spec hash"].where(frame["spec hash"].astype(bool), "label:" + frame["model"])
    return identity + "|" + frame["input px"].astype(str) + "|" + frame["head"]


def series_name(row) -> str:
    """Returns a history series' legend name, e.g. 'SpineNet-49 #3fa2c1d0 @640 + retinanet' (HTML-escaped)."""
    # An edited spec's label carries its short hash already.
    named = row["spec"] and row["spec"][:SHORT_HASH_DIGITS] in row["model"]
    name = f"{row['model']} #{row['spec']}" if row["spec"] and not named else row["model"]
    head = f" + {row['head']}" if row["head"] != "none" else ""
    return escape_html(f"{name} @{row['input px']}{head}")


# ---------------------------------------------------------------------------------------------------------------
# Per block: the table, the sum-vs-end-to-end check, MACs share vs time share, and the graph's time shares


def per_block_frame(run) -> pd.DataFrame:
    """Returns one row per timed unit of a PerBlockRun: unit (module name), graph node, median / p10 / p90 in ms
    and the share of the sum of the unit medians in %."""
    return pd.DataFrame([{"unit": row["id"], "graph node": row.get("node") or "", "median ms": row["median_ms"],
                          "p10 ms": row["p10_ms"], "p90 ms": row["p90_ms"], "share %": 100 * row["share"]}
                         for row in run.blocks])


def per_block_check_line(run) -> str:
    """One Markdown line: the sum of the unit medians against the end-to-end median, and the hooks' overhead."""
    parts = [f"**Sum of the block medians** {run.blocks_sum_ms:.2f} ms vs end-to-end median {run.median_ms:.2f} ms: "
             f"{100 * run.blocks_sum_diff:+.1f} % (target within 10 %; the rest is glue outside any unit)"
             if run.blocks_sum_ms is not None and run.blocks_sum_diff is not None else "no sum check stored"]
    if run.hooked_median_ms is not None and run.hook_overhead is not None:
        parts.append(f"**timing hooks** {run.hooked_median_ms:.2f} ms with vs {run.median_ms:.2f} ms without: "
                     f"{100 * run.hook_overhead:+.1f} % (target within 5 %)")
    return " · ".join(parts)


def run_caption(run) -> str:
    """Returns where a PerBlockRun comes from, e.g. 'SpineNet-49 at 256 px, batch 1, fp32, CPU (...), 2024-...'
    (plain text; escape it before Markdown)."""
    return (f"{run.label} at {size_text(run.input_size)}, head {run.head}, batch {run.batch}, {run.precision}, "
            f"{run.device_name}, {run.created_at.replace('T', ' ')[:19]} UTC")


def shares_figure(rows: list[dict], title: str) -> go.Figure:
    """Each timed block's MACs share (x) against its time share (y), both in % of the timed blocks' sums
    (`analysis.latency.block_shares.time_and_macs_shares`), with the diagonal y = x: a block above it takes more
    of the time than of the MACs (latency-unfriendly). Block ids on hover."""
    xs = [100 * row["macs_share"] for row in rows]
    ys = [100 * row["time_share"] for row in rows]
    top = max(xs + ys + [1.0]) * 1.08
    ratio = [row["time_share"] / row["macs_share"] if row["macs_share"] > 0 else float("inf") for row in rows]
    colours = ["#c0392b" if value > 1.5 else "#3b6fb6" for value in ratio]
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="time share = MACs share",
                                line=dict(color="#999999", dash="dash"), hoverinfo="skip"))
    figure.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers", name="blocks", marker=dict(size=9, color=colours, line=dict(color="white", width=1)),
        customdata=[[escape_html(row["node"]), row["median_ms"], value] for row, value in zip(rows, ratio)],
        hovertemplate="<b>%{customdata[0]}</b><br>MACs share %{x:.1f}%<br>time share %{y:.1f}% "
                      "(%{customdata[1]:.2f} ms)<br>time / MACs share %{customdata[2]:.2f}x<extra></extra>"))
    figure.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="white",
                         title=dict(text=escape_html(title), font=dict(size=14)), showlegend=True,
                         legend=dict(orientation="h", y=-0.2),
                         xaxis=dict(title="MACs share (% of the timed blocks)", range=[0, top], gridcolor="#eeeeee"),
                         yaxis=dict(title="time share (% of the timed blocks)", range=[0, top], gridcolor="#eeeeee"))
    return figure


def time_shares(spec: Spec) -> dict | None:
    """For the graph's time modes: {node id: {median_ms, share}} from the most recent per-block run of this spec
    (share = fraction of the timed blocks' sum), with one caption saying which run; None, with a one-line hint
    saying what to do, when there is none or the history cannot be read."""
    import streamlit as st

    from spinescope.analysis.latency.block_shares import latest_per_block, time_and_macs_shares
    from spinescope.app.markup import escape_md

    try:
        run = latest_per_block(spec)
    except Exception as error:  # noqa: BLE001 - one line, the graph still shows
        st.caption(escape_md(f"Time share unavailable (the latency history cannot be read: {error}). "
                             "Showing type colours."))
        return None
    if run is None:
        st.info("No per-block latency for this spec yet: open **Latency**, tick **Time every block**, measure the "
                "current spec, then come back. Showing type colours.", icon=":material/timer_off:")
        return None
    rows = time_and_macs_shares(spec, run)
    st.caption(escape_md(f"Time share from the latest per-block run: {run_caption(run)}."))
    return {row["node"]: {"median_ms": row["median_ms"], "share": row["time_share"]} for row in rows}
