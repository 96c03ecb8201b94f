"""Memory: the estimated peak of one training step of the open spec (analysis.memory), split into weights,
gradients, optimizer state and activations kept for backward (per block); the largest batch that fits a budget
at each input size beside ResNet-50-FPN, and the peak against the batch for both. Nothing is allocated."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from spinescope.analysis.memory.estimate import estimate_training_memory
from spinescope.analysis.memory.fit import FIT_BATCHES, FIT_SIZES, REFERENCE, memory_vs_batch, fit_rows, reference_spec
from spinescope.analysis import defaults
from spinescope.app import session, sidebar
from spinescope.app.exports import file_stem
from spinescope.app.guard import guarded
from spinescope.app.markup import escape_html, escape_md
from spinescope.app.tables import CELL_PADDING_PX, CHAR_PX, INPUT_PX_COLUMN, table
from spinescope.spinenet.input_size import InputSize, normalize, size_to_json
from spinescope.spinenet.input_size import size_text as size_px
from spinescope.spinenet.validate import LIMITS

AREA = "memory"
SETTING = "memory"
MIB, GIB = 2 ** 20, 2 ** 30
HEAD_CHOICES = {"none": "backbone only", "retinanet": "with RetinaNet head",
                "classification": "with classification head"}
PRECISION_CHOICES = {"fp32": "fp32", "bf16": "bf16 autocast", "fp16": "fp16 autocast"}
DEVICE_CHOICES = {"cuda": "GPU", "cpu": "CPU"}
OPTIMIZER_CHOICES = {"sgd": "SGD with momentum", "adamw": "AdamW"}
WIDGET_KEYS = ("memory_head", "memory_size", "memory_height", "memory_batch", "memory_optimizer", "memory_precision",
               "memory_device", "memory_budget_gib")
MAX_BUDGET_GIB = 4096.0


def _defaults() -> dict:
    """The form's values before the user sets them: the sidebar's head and input size, the shared defaults."""
    return {"memory_head": sidebar.head(), "memory_size": sidebar.input_side(), "memory_height": sidebar.input_height(),
            "memory_batch": defaults.TRAINING_BATCH, "memory_optimizer": defaults.OPTIMIZER,
            "memory_precision": defaults.PRECISION, "memory_device": defaults.TRAINING_DEVICE,
            "memory_budget_gib": defaults.MEMORY_BUDGET_GIB}


def _valid(key: str, value):
    """Returns a stored value the widget can show, or None (a value that is no longer an option or in range)."""
    options = {"memory_head": HEAD_CHOICES, "memory_optimizer": OPTIMIZER_CHOICES,
               "memory_precision": PRECISION_CHOICES, "memory_device": DEVICE_CHOICES}
    if key in options:
        return value if value in options[key] else None
    if key == "memory_height" and value is None:
        return None  # empty: a square input
    ranges = {"memory_size": (LIMITS["min_input_size"], LIMITS["max_input_size"]),
              "memory_height": (LIMITS["min_input_size"], LIMITS["max_input_size"]), "memory_batch": (1, 4096),
              "memory_budget_gib": (0.1, MAX_BUDGET_GIB)}
    low, high = ranges[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
    return (float(value) if key == "memory_budget_gib" else int(value)) if ok else None


@session.callback(AREA)
def _setting_changed(key: str) -> None:
    settings = dict(session.setting(SETTING) or {})
    settings[key] = st.session_state.get(key)
    session.set_setting(SETTING, settings)


def settings_form() -> dict:
    """The form; the values the user set are kept in the workspace (they survive other tabs and a refresh), the
    others follow the sidebar. Returns them."""
    state, stored, start = st.session_state, session.setting(SETTING) or {}, _defaults()
    for key in WIDGET_KEYS:
        if key not in state or key not in stored:
            value = _valid(key, stored.get(key, start[key]))
            state[key] = start[key] if value is None else value
    changed = {"on_change": _setting_changed}
    cols = st.columns(5)
    cols[0].selectbox("Head", list(HEAD_CHOICES), key="memory_head", format_func=HEAD_CHOICES.get,
                      args=("memory_head",), **changed)
    cols[1].number_input("Input size (px)", min_value=LIMITS["min_input_size"], max_value=LIMITS["max_input_size"],
                         step=32, key="memory_size", args=("memory_size",), **changed)
    cols[2].number_input("Height (empty: square)", min_value=LIMITS["min_input_size"],
                         max_value=LIMITS["max_input_size"], step=32, key="memory_height", value=None,
                         placeholder="square", args=("memory_height",), **changed)
    cols[3].number_input("Batch", min_value=1, max_value=4096, step=1, key="memory_batch", args=("memory_batch",),
                         **changed)
    cols[4].number_input("Memory budget (GiB)", min_value=0.1, max_value=MAX_BUDGET_GIB, step=1.0, format="%.1f",
                         key="memory_budget_gib", args=("memory_budget_gib",),
                         help="GiB = 2^30 bytes; e.g. 16 for a 16 GB GPU", **changed)
    cols = st.columns(4)
    cols[0].selectbox("Optimizer", list(OPTIMIZER_CHOICES), key="memory_optimizer",
                      format_func=OPTIMIZER_CHOICES.get, args=("memory_optimizer",), **changed)
    cols[1].selectbox("Precision", list(PRECISION_CHOICES), key="memory_precision",
                      format_func=PRECISION_CHOICES.get, args=("memory_precision",), **changed)
    cols[2].selectbox("Training on", list(DEVICE_CHOICES), key="memory_device", format_func=DEVICE_CHOICES.get,
                      args=("memory_device",), **changed,
                      help="Only AdamW's step temporaries differ: foreach on a GPU (one fp32 copy of all the "
                           "parameters), per tensor on the CPU. With SGD the device changes nothing.")
    return {key: state[key] for key in WIDGET_KEYS}


def chosen_size(values: dict) -> InputSize:
    """Returns the form's input size: its side, or (height, width) when a height other than the width is set."""
    height = values.get("memory_height")
    return normalize((int(height), int(values["memory_size"]))) if height else int(values["memory_size"])


def breakdown(spec, values: dict) -> None:
    """The peak and its parts, then the activations kept per block."""
    options = _options(values)
    estimate = estimate_training_memory(spec, chosen_size(values), batch=int(values["memory_batch"]),
                                        **options)
    cols = st.columns(5)
    cols[0].metric("Peak (one training step)", f"{estimate.peak_bytes / GIB:,.2f} GiB",
                   help=f"during the {estimate.peak_phase}")
    cols[1].metric("Weights", size_text(estimate.weights_bytes))
    cols[2].metric("Gradients", size_text(estimate.gradients_bytes))
    cols[3].metric("Optimizer state", size_text(estimate.optimizer_bytes))
    cols[4].metric("Activations kept", size_text(estimate.activations_bytes))
    copies = (f" Autocast's half-precision weight copies: {estimate.autocast_copies_bytes / MIB:,.1f} MiB of the "
              "activations." if estimate.autocast_copies_bytes else "")
    st.caption(escape_md(
        f"{session.current_name()} ({HEAD_CHOICES[values['memory_head']]}) at {size_px(estimate.input_size)}, "
        f"batch {estimate.batch}, "
        f"{OPTIMIZER_CHOICES[estimate.optimizer]}{_step_text(estimate)}, {estimate.precision}: estimated from the structure, nothing "
        f"allocated. The peak ({estimate.peak_bytes / MIB:,.0f} MiB) is reached during the {estimate.peak_phase} "
        f"and includes {estimate.transient_bytes / MIB:,.1f} MiB of transient tensors.{copies}"
        " MiB = 2^20 bytes, GiB = 2^30 bytes."))
    st.markdown("##### Activations kept for backward, per block")
    total = max(estimate.activations_bytes - estimate.autocast_copies_bytes, 1)
    frame = pd.DataFrame([{"block": block_name(row["id"]), "activations MiB": row["activations_bytes"] / MIB,
                           "share %": 100 * row["activations_bytes"] / total, "params": row["params"]}
                          for row in estimate.blocks])
    left, right = st.columns([2, 3], gap="medium")
    with left:
        table(frame, "memory_blocks_table", f"{file_stem(spec, session.history().base)}-training-memory.csv",
              hide_index=True,
              width="stretch", height=360,
              column_config={"activations MiB": st.column_config.NumberColumn("activations MiB", format="%.1f"),
                             "share %": st.column_config.NumberColumn("share %", format="%.1f"),
                             "params": st.column_config.NumberColumn("params", format="compact")})
    with right:
        st.plotly_chart(blocks_figure(frame), key="memory_blocks_plot", config={"displaylogo": False})


def _step_text(estimate) -> str:
    """How AdamW's step runs on the chosen device (' (foreach step on the GPU)'); '' for SGD, whose step needs no
    temporaries."""
    if estimate.optimizer != "adamw":
        return ""
    return f" ({'foreach' if estimate.device == 'cuda' else 'per-tensor'} step on the {DEVICE_CHOICES[estimate.device]})"


def size_text(count: int) -> str:
    """Returns bytes as MiB below 1 GiB ('109.3 MiB'), else as GiB ('7.60 GiB')."""
    return f"{count / MIB:,.1f} MiB" if count < GIB else f"{count / GIB:,.2f} GiB"


def blocks_figure(frame: pd.DataFrame) -> go.Figure:
    """Activations kept per block (MiB), in forward order."""
    figure = go.Figure(go.Bar(x=[escape_html(name) for name in frame["block"]], y=frame["activations MiB"],
                              marker_color="#3b6fb6", hovertemplate="%{x}: %{y:,.1f} MiB<extra></extra>"))
    figure.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white",
                         title=dict(text="Activations kept for backward per block (MiB)", font=dict(size=14)),
                         yaxis=dict(title="MiB", gridcolor="#eeeeee"), xaxis=dict(tickangle=-60, type="category"))
    return figure


def fit_section(spec, values: dict) -> None:
    """The largest batch that fits the budget at each input size, and peak memory vs batch, beside ResNet-50-FPN."""
    options = _options(values)
    budget = int(values["memory_budget_gib"] * GIB)
    size = chosen_size(values)
    reference, name = reference_spec(), session.current_name()
    st.markdown(f"##### Largest batch that fits {values['memory_budget_gib']:,.1f} GiB")
    rows = fit_rows(spec, budget, {*FIT_SIZES, size}, **options)
    here = next(row for row in rows if row["input_size"] == size_to_json(size))
    cols = st.columns(2)
    cols[0].metric(f"{name} at {size_px(size)}", f"batch {here['max_batch']:,}")
    cols[1].metric(f"{reference.name} at {size_px(size)}", f"batch {here[f'{REFERENCE}_max_batch']:,}")
    frame = pd.DataFrame([{"input px": row["input_size"], f"{name} max batch": row["max_batch"],
                           f"{reference.name} max batch": row[f"{REFERENCE}_max_batch"]} for row in rows])
    left, right = st.columns([2, 3], gap="medium")
    with left:
        table(frame, "memory_fit_table", f"{file_stem(spec, session.history().base)}-max-batch.csv",
              hide_index=True, width="stretch", column_config=fit_columns(name, reference.name))
        st.caption("0: not even one image fits. Same head, optimizer and precision for both models.")
    with right:
        batches = sorted({*FIT_BATCHES, int(values["memory_batch"])})
        points = memory_vs_batch(spec, size, batches, **options)
        st.plotly_chart(batch_figure(points, name, reference.name, budget, size), key="memory_batch_plot",
                        config={"displaylogo": False})


# The largest-batch table in the left 2/5 of the page fits 1366 px without scrolling sideways: narrow columns
# named by the models (the full names in their help and in the CSV).
FIT_COLUMN_WIDTH = 110


def block_name(module_id: str | None) -> str:
    """Returns a per-block row's short name: 'b7', 'stem_conv', 'endpoints', 'head' ('(model)' for the rest)."""
    return (module_id or "(model)").removeprefix("backbone.blocks.").removeprefix("backbone.")


def fit_columns(name: str, reference_name: str) -> dict:
    """Returns the largest-batch table's column config: the input size, and one narrow column per model, headed
    by its name, or "current spec" where the name would be cut (the full name is in the help and the CSV)."""
    def header(model: str) -> str:
        fits = round(CHAR_PX * len(model)) + CELL_PADDING_PX <= FIT_COLUMN_WIDTH
        return model if fits or model == reference_name else "current spec"

    return {"input px": INPUT_PX_COLUMN,
            **{f"{model} max batch": st.column_config.NumberColumn(
                header(model), help=f"{model}: the largest batch whose estimated peak fits the budget", format="%d",
                width=FIT_COLUMN_WIDTH) for model in (name, reference_name)}}


MIN_TICK_RATIO = 1.25  # batch ticks closer than this on the log axis would overlap at 1366 px (16 and 17 do)


def batch_ticks(batches) -> list[int]:
    """Returns the batches labelled on the memory-vs-batch axis: the standard ones (FIT_BATCHES) and each other
    batch at least MIN_TICK_RATIO away from all of them (a batch too close is still plotted, unlabelled)."""
    standard = [batch for batch in batches if batch in FIT_BATCHES]
    apart = [batch for batch in batches if batch not in FIT_BATCHES
             and all(max(batch, tick) / min(batch, tick) >= MIN_TICK_RATIO for tick in standard)]
    return sorted(standard + apart)


def batch_figure(points: list[dict], name: str, reference_name: str, budget_bytes: int,
                 size: InputSize) -> go.Figure:
    """Estimated peak (GiB) against the batch for the spec and the reference, with the budget as a line."""
    figure = go.Figure()
    batches = [point["batch"] for point in points]
    for key, label, colour, dash in (("peak_bytes", name, "#3b6fb6", "solid"),
                                     (f"{REFERENCE}_peak_bytes", reference_name, "#999999", "dot")):
        figure.add_trace(go.Scatter(x=batches, y=[point[key] / GIB for point in points], mode="lines+markers",
                                    name=escape_html(label), line=dict(color=colour, dash=dash),
                                    hovertemplate="batch %{x}: %{y:,.2f} GiB<extra>%{fullData.name}</extra>"))
    figure.add_trace(go.Scatter(x=[batches[0], batches[-1]], y=[budget_bytes / GIB] * 2, mode="lines",
                                name=f"budget {budget_bytes / GIB:,.1f} GiB", line=dict(color="#c0392b", dash="dash"),
                                hoverinfo="skip"))
    figure.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white",
                         title=dict(text=f"Peak memory of one training step vs batch at {size_px(size)} (GiB)",
                                    font=dict(size=14)),
                         xaxis=dict(title="batch", type="log", gridcolor="#eeeeee", tickvals=batch_ticks(batches)),
                         yaxis=dict(title="GiB", gridcolor="#eeeeee", rangemode="tozero"),
                         legend=dict(orientation="h", y=-0.25))
    return figure


def _options(values: dict) -> dict:
    return {"head": values["memory_head"], "optimizer": values["memory_optimizer"],
            "precision": values["memory_precision"], "device": values["memory_device"]}


def render() -> None:
    spec = session.current()
    st.caption("The memory one training step needs (forward, backward, optimizer step; steady state), estimated "
               "from the structure in milliseconds: no model is built and nothing is allocated. Measured error: "
               "see the README's Training memory section.")
    session.show_notes(AREA)
    values = settings_form()
    guarded("the memory estimate", breakdown, spec, values)
    guarded("the batch fit", fit_section, spec, values)
