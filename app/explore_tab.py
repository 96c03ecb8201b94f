"""Explore: the graph (click a node to select it), totals, the selected block, per-block table, scale profile and
receptive fields, all for the current spec at the chosen input size."""
from __future__ import annotations

import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from spinescope.app import counts, selection, session, sidebar, verify
from spinescope.app.graph_figure import TIME_MODES, dead_blocks, dead_blocks_note, feeds_text, graph_figure
from spinescope.app.graph_view import show_graph
from spinescope.app.latency_view import time_shares
from spinescope.app.guard import guarded
from spinescope.app.exports import file_stem
from spinescope.app.markup import escape_html, escape_md
from spinescope.app.tables import column, table as show_table
from spinescope.app.units import billions, millions, signed_billions, signed_millions
from spinescope.spinenet.blocks import BLOCK_TYPES
from spinescope.spinenet.input_size import InputSize, dims_label, hw
from spinescope.spinenet.spec import Spec

GRAPH_HEIGHT = 500
MACS_MODE_LABELS = {"off": "type colours", "size": "node size = MACs share", "colour": "node colour = MACs share",
                    "time_size": "node size = time share", "time_colour": "node colour = time share"}


@session.callback("explore")
def _macs_mode_changed() -> None:
    session.set_setting("macs_mode", st.session_state.macs_mode)


def totals(spec: Spec, result, base_result=None) -> None:
    """Shows backbone and backbone + head params, MACs and FLOPs (deltas against the starting spec if edited)."""
    def delta(value, base_value, fmt):
        return None if base_result is None or value == base_value else fmt(value - base_value)

    head_label = "RetinaNet" if result.head == "retinanet" else "classification"
    base = base_result
    backbone, whole = st.columns(2, gap="medium")
    with backbone.container(border=True, key="totals_backbone"):
        st.markdown("**Backbone**")
        cols = st.columns(3)
        cols[0].metric("Params", millions(result.backbone_params),
                       delta(result.backbone_params, base and base.backbone_params, signed_millions),
                       delta_color="off")
        cols[1].metric("MACs", billions(result.backbone_macs),
                       delta(result.backbone_macs, base and base.backbone_macs, signed_billions), delta_color="off")
        cols[2].metric("FLOPs (2 × MACs)", billions(2 * result.backbone_macs))
    with whole.container(border=True, key="totals_with_head"):
        st.markdown(f"**Backbone + {head_label} head**")
        cols = st.columns(3)
        cols[0].metric("Params", millions(result.params), delta(result.params, base and base.params,
                                                                 signed_millions), delta_color="off")
        cols[1].metric("MACs", billions(result.macs), delta(result.macs, base and base.macs, signed_billions),
                       delta_color="off")
        cols[2].metric("FLOPs (2 × MACs)", billions(result.flops))
    st.caption(f"{escape_md(session.current_name())} at {dims_label(result.input_size)} px, batch 1. **MACs** = "
               "multiply-adds (the paper's “FLOPs”); **FLOPs** = 2 × MACs; params = trainable parameters. "
               "Deltas: change since the starting spec. "
               f"The {head_label} head is {100 * result.head_macs_share:.0f}% of the MACs and "
               f"{100 * result.head_params_share:.0f}% of the params.")


@session.callback("explore")
def _verify_clicked(spec: Spec, input_size: InputSize, head: str) -> None:
    verify.start(spec, input_size, head)


@st.fragment(run_every=1.0)
def _verification_running(spec: Spec, input_size: InputSize, head: str) -> None:
    entry = verify.status(spec, input_size, head)
    if entry is None or entry.state != "running":
        st.rerun()
    st.caption(f":material/hourglass_top: {entry.message} ({time.time() - entry.started:.0f} s)")


def verification(spec: Spec, input_size: InputSize, head: str) -> None:
    """The counter's provenance, and on request the check against fvcore tracing a real model."""
    entry = verify.status(spec, input_size, head)
    if entry is not None and entry.state == "running":
        _verification_running(spec, input_size, head)
        return
    text, column = st.columns([4, 1], vertical_alignment="center")
    if entry is None:
        text.caption("Counted by the fast exact counter (fvcore's formulas on the layout's shapes, no model built).")
    else:
        icon = {"verified": ":material/check_circle:", "differs": ":material/error:"}.get(entry.state,
                                                                                         ":material/warning:")
        text.caption(f"{icon} {escape_md(entry.message)}")
    if entry is None or entry.state == "failed":
        column.button("Verify with fvcore", key="verify_fvcore", on_click=_verify_clicked,
                      args=(spec, input_size, head), width="stretch",
                      help="Trace a real model with fvcore in the background and compare every block (slow)")


def block_details(spec: Spec, result, block_id: str, input_size: InputSize) -> None:
    layout = counts.view_of(spec, input_size, result.head).layout
    node = layout.node(block_id)
    cost = counts.block_costs(spec, result).get(block_id, {})
    title = f"**{escape_md(block_id)}**" + (f" · output **P{node.output_level}**" if node.output_level else "")
    st.markdown(title)
    rows = [("level", f"L{node.level} ({node.width}×{node.height} px)"), ("type", node.block_fn + (
        " (stem, fixed)" if node.role == "stem" else "")), ("channels", f"{node.in_channels} → {node.out_channels}"),
        ("params", millions(cost.get("params"))), ("MACs", billions(cost.get("macs")) + (
            f" ({100 * cost['share']:.1f}% of backbone)" if cost else ""))]
    if cost.get("resample_macs") is not None:
        rows.append(("resampling", f"{millions(cost.get('resample_params'))} params, "
                                   f"{billions(cost['resample_macs'])} MACs"))
    inputs = [f"{escape_md(edge.source)} ({'0-outdegree merge' if edge.kind == 'merge' else edge.resample_label})"
              for edge in layout.edges_into(block_id)]
    rows.append(("inputs", ", ".join(inputs) or "image"))
    rows.append(("feeds", escape_md(feeds_text(layout, block_id))))
    dead = dead_blocks(layout).get(block_id)
    if dead:
        rows.append(("**dead**", f"reaches no output: {escape_md(dead)} (built, params count, 0 MACs)"))
    st.markdown("\n".join(f"- {name}: {value}" for name, value in rows))
    if node.block_fn in BLOCK_TYPES:  # the what-if itself is drawn below the graph, where its table fits
        st.toggle("As other block types", key="whatif_open",
                  help="What this block would cost as each block type (shown below the graph), and what 1x1 "
                       "convolutions save")


def block_whatif_view(spec: Spec, block_id: str, input_size) -> None:
    """The block-type what-if of one block (`analysis.architecture.block_whatif`) and the seeds' worked examples."""
    from spinescope.analysis.architecture.block_whatif import block_whatif
    from spinescope.analysis.architecture.one_by_one import worked_examples

    whatif = block_whatif(spec, block_id, input_size, sidebar.head())
    st.markdown(f"##### {escape_md(block_id)} as each block type")
    height, width = hw(whatif.size)
    pixels = -(-height // whatif.stride) * -(-width // whatif.stride) * whatif.repeats
    delta = {o.block_fn: o.model_macs_delta for o in whatif.as_specified}
    frame = pd.DataFrame([{"type": o.block_fn + (" (current)" if o.current else ""),
                           "channels": f"{o.in_channels}→{o.width}→{o.out_channels}", "params": o.params,
                           "MACs": o.macs, "MACs / pixel": o.macs // max(pixels, 1),
                           "model MACs Δ (in the spec)": "not allowed here" if delta.get(o.block_fn) is None
                           else signed_billions(delta[o.block_fn])} for o in whatif.same_channels])
    st.dataframe(frame, hide_index=True, width="stretch", column_config={
        "params": st.column_config.NumberColumn(format="compact"), "MACs": st.column_config.NumberColumn(
            format="compact"), "MACs / pixel": st.column_config.NumberColumn(
            format="localized", help="MACs per output pixel (all repeats of the block group)"),
        "model MACs Δ (in the spec)": st.column_config.TextColumn(
            help="the whole model's MACs change when the block is retyped in the spec (the family's widths); "
                 "'not allowed here' where the family does not allow the type")})
    st.caption(escape_md("Same input and output channels: what the 1x1 reductions of a bottleneck save. The seeds' "
                         "worked examples, counted the same way: " + "; ".join(
                             f"{e.name}: {e.without:,} → {e.with_reductions:,} {e.unit} ({e.ratio:.1f}× fewer)"
                             for e in worked_examples()) + "."))


def scale_profile_figure(spec: Spec, input_size: InputSize, name: str | None = None) -> go.Figure:
    """Returns the scale profile: feature level along block order, the current spec (named `name`, default its
    own) beside ResNet-50-FPN."""
    from spinescope.spinenet.builtins import load_builtin

    figure = go.Figure()
    reference = load_builtin("resnet50-fpn")
    for candidate, colour, dash in ((reference, "#bbbbbb", "dot"), (spec, "#3b6fb6", "solid")):
        if candidate is reference and spec.family == reference.family:
            continue
        profile = counts.scale_profile(candidate, input_size)
        figure.add_trace(go.Scatter(x=profile["order"], y=profile["level"], mode="lines+markers",
                                    name=escape_html(candidate.name if candidate is reference else name or spec.name),
                                    line=dict(color=colour, dash=dash, shape="hv"),
                                    marker=dict(size=5), text=profile["id"],
                                    hovertemplate="%{text}: L%{y}<extra>%{fullData.name}</extra>"))
    figure.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), plot_bgcolor="white",
                         legend=dict(orientation="h", y=1.12, x=0),
                         xaxis=dict(title="block order", showgrid=False),
                         yaxis=dict(title="level", dtick=1, gridcolor="#eeeeee"))
    return figure


def receptive_fields(spec: Spec, input_size: InputSize) -> None:
    table = counts.receptive_field_table(spec, input_size)
    if table is None:
        st.caption("Receptive fields are not available in this build.")
        return
    stem = file_stem(spec, session.history().base)
    show_table(table, "receptive_fields", f"{stem}-receptive-fields.csv", hide_index=True, width="stretch",
               column_config={"receptive field px": column("field px", "theoretical receptive field (pixels)"),
                              "stride px": column("stride px", "effective stride (pixels)"),
                              "longest path (layers)": column("longest path", "weighted layers from the input"),
                              "scale changes on it": column("scale changes", "on the longest path"),
                              "shortest path (layers)": column("shortest path", "weighted layers from the input")})
    st.caption("Theoretical receptive field (not clipped to the image) and effective stride; paths counted in "
               "weighted layers from the input.")


def start_here() -> None:
    """One line for a first visit (until the first edit): what to do first."""
    if len(session.history().entries) > 1:
        return
    with st.container(key="start_here"):
        st.caption(":material/touch_app: **Start here:** hover a block or an arrow for its costs, click a block to "
                   "select it, change it in **Edit**, set it beside ResNet-FPN in **Compare**; other built-ins are "
                   "in the sidebar.")


def graph_panel(spec: Spec, result, input_size: InputSize) -> None:
    chosen = selection.selected(spec, input_size)
    # Above the columns, so that its five options fit on one row beside each other.
    if "macs_mode" not in st.session_state:
        st.session_state.macs_mode = session.setting("macs_mode", "off")
    st.segmented_control("Show MACs share as", list(MACS_MODE_LABELS), key="macs_mode",
                         format_func=MACS_MODE_LABELS.get, on_change=_macs_mode_changed,
                         label_visibility="collapsed")
    graph_column, side = st.columns([3, 1], gap="medium")
    with graph_column:
        mode = st.session_state.get("macs_mode") or "off"
        times = time_shares(spec) if mode in TIME_MODES else None
        figure = graph_figure(spec, input_size, counts.block_costs(spec, result), mode, chosen,
                              height=GRAPH_HEIGHT, times=times, head=result.head)
        show_graph(figure, key="graph", on_click=selection.graph_clicked,
                   alt=f"Graph of {spec.name}: {len(selection.node_ids(spec, input_size))} blocks by order and "
                       "feature level")
        st.caption("x = block order, y = feature level. Arrows: parent connections coloured by resampling (hover "
                   "one for its operations and cost); dashed purple: merged by the 0-outdegree rule. Click a block "
                   "to select it.")
        note = dead_blocks_note(counts.view_of(spec, input_size, result.head).layout)
        if note:
            st.caption(f":material/block: {escape_md(note)}")
    with side:
        chosen = selection.selector(spec, input_size, key="explore_block_box")
        block_details(spec, result, chosen, input_size)
    layout = counts.view_of(spec, input_size, result.head).layout
    if st.session_state.get("whatif_open") and layout.node(chosen).block_fn in BLOCK_TYPES:
        block_whatif_view(spec, chosen, input_size)


def block_costs_table(spec: Spec, result) -> None:
    frame = counts.block_table(spec, result)
    # Narrow columns with short labels; channels in, feature size, resampling and inputs on request (fits 1366 px).
    config = {"order": column("#", "build order", width=36), "id": st.column_config.TextColumn("id", width=60),
              "level": column("level", width=50), "type": st.column_config.TextColumn("type", width=86),
              "in ch": column("in ch", "input channels", width=56), "out ch": column("out ch", "output channels",
                                                                                     width=60),
              "size px (W×H)": st.column_config.TextColumn("W×H px", help="feature map width × height (pixels)",
                                                           width=66),
              "params": column("params", format="compact", width=64),
              "MACs": column("MACs", "multiply-adds, batch 1", "compact", width=64),
              "resample MACs": column("resample", "the MACs spent resampling the inputs", "compact", width=72),
              "MACs %": column("MACs %", "share of the backbone's MACs", "%.2f%%", width=68),
              "output": st.column_config.TextColumn("output", width=58),
              "inputs": st.column_config.TextColumn("inputs", width=150)}
    show_table(frame, "block_table", f"{file_stem(spec, session.history().base)}-blocks.csv", hide_index=True,
               width="stretch", height=320,
               column_config=config, more=("in ch", "resample MACs", "inputs"))
    st.caption("Each block's figures include the resampling that feeds it. Click a column header to sort.")


def scale_profile(spec: Spec, input_size: InputSize) -> None:
    st.plotly_chart(scale_profile_figure(spec, input_size, session.current_name()), key="profile",
                    config={"displaylogo": False})
    st.caption("Feature level of each block in build order: scale-permuted (up and down) vs scale-decreased.")




def render() -> None:
    spec = session.current()
    input_size, head = sidebar.input_size(), sidebar.head()
    result = counts.analysis_of(spec, input_size, head)
    base = session.history().base
    base_result = counts.analysis_of(base, input_size, head) if base != spec else None
    session.show_notes("explore")
    start_here()
    # Each part is guarded on its own: one failing part shows its one-line error and the others keep working.
    # The graph comes first, so it is above the fold on a 1366 x 768 screen.
    guarded("the graph", graph_panel, spec, result, input_size)
    guarded("the totals", totals, spec, result, base_result)
    guarded("the verification", verification, spec, input_size, head)
    # Below the graph, one at a time: only the open one is drawn. Drawn all at once, a second plotly chart and a
    # second grid competed with the graph on a first visit (benchmarks/bench_edit_loop.py).
    views = {"Per-block costs": (block_costs_table, spec, result), "Scale profile": (scale_profile, spec, input_size),
             "Receptive fields (P3–P7)": (receptive_fields, spec, input_size)}
    tabs = st.tabs(list(views), key="explore_details", on_change="rerun", bind="query-params")
    for (label, view), tab in zip(views.items(), tabs):
        if tab.open:
            with tab:
                guarded(label.lower(), *view)
