"""Latency: time the real model (and others, interleaved) in a worker process with a progress bar and a cancel
button; the device is named plainly; results and the stored history as tables and plots. With "Time every block",
each block's time too: the per-block table, the sum and hook checks, and MACs share vs time share.

A running measurement belongs to the workspace (the `ws` address parameter), as a sweep does: a refresh of the same
address follows it, while another workspace never sees it.
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass

import streamlit as st

from spinescope.analysis.latency.errors import LatencyError
from spinescope.analysis.latency.history import get_results, list_results, save_results
from spinescope.analysis.latency.job import LatencyJob
from spinescope.analysis.latency.time_estimate import load_warning
from spinescope.analysis.latency.request import DEFAULT_ITERS, DEFAULT_WARMUP, LatencyRequest, cuda_available, describe_device
from spinescope.app import background, session, sidebar
from spinescope.app.guard import guarded, one_line
from spinescope.app.latency_view import (history_figure, per_block_check_line, per_block_frame, results_figure, results_frame,
                              run_caption, shares_figure)
from spinescope.app.markup import escape_md
from spinescope.app.tables import INPUT_PX_COLUMN, column, model_width, table
from spinescope.app.workspace_runs import workspace_runs
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.input_size import InputSize, normalize
from spinescope.spinenet.spec import spec_from_dict, spec_to_dict
from spinescope.spinenet.validate import LIMITS

AREA = "latency"
LAST_RUN = "latency_last_run"  # the workspace setting that keeps the last finished run's history ids and specs
CURRENT = "current spec"
DESIGN_PREFIX = "design: "
HEAD_CHOICES = {"none": "backbone only", "retinanet": "with RetinaNet head",
                "classification": "with classification head"}


@st.cache_resource(show_spinner=False)
def device_sentence() -> str:
    """Returns e.g. 'CPU (AMD EPYC, 2 threads), no GPU found' or 'GPU: NVIDIA H100 80GB HBM3'."""
    try:
        return describe_device("auto")
    except Exception as error:  # noqa: BLE001 - shown as one line
        return f"device unknown ({one_line(error)})"


def _spec_for(choice: str):
    if choice == CURRENT:
        return session.current()
    if choice.startswith(DESIGN_PREFIX):
        return session.store().load_design(choice[len(DESIGN_PREFIX):])
    return load_builtin(choice)


def _label(choice: str) -> str:
    """An option's label: plain text (Streamlit shows options literally; Markdown escapes would show as
    backslashes). The spec name reaches Markdown only through `progress_text`, escaped."""
    if choice == CURRENT:
        return f"current spec ({session.current_name()})"
    return choice if choice.startswith(DESIGN_PREFIX) else load_builtin(choice).name


@dataclass
class LatencyRun:
    """A measurement in progress: its job and the specs of its requests (in result order)."""

    job: object
    specs: list


def running() -> LatencyRun | None:
    """Returns this workspace's running (or finished, not yet collected) measurement, or None."""
    return workspace_runs(AREA).current()


@session.callback("latency")
def _start() -> None:
    state = st.session_state
    try:
        requests = [LatencyRequest(_spec_for(choice), input_size=chosen_size(state), head=state.latency_head,
                                   batch=int(state.latency_batch), precision=state.latency_precision,
                                   channels_last=state.latency_channels_last, fold_bn=state.latency_fold_bn,
                                   label=None if choice != CURRENT else f"{session.current_name()} (current)")
                    for choice in state.latency_models]
        if not requests:
            raise LatencyError("invalid", "choose at least one model to measure")
        job = LatencyJob(requests, device=state.latency_device, iters=int(state.latency_iters),
                         warmup=int(state.latency_warmup), threads=int(state.latency_threads) or None,
                         per_block=bool(state.latency_per_block))  # checks the options; starts nothing
        started = workspace_runs(AREA).start(lambda: LatencyRun(
            background.submit_latency(session.browser_id(), "latency run", job), [request.spec for request in requests]))
        if started is None:
            raise LatencyError("invalid", "a measurement is already running in this workspace")
        state.pop("latency_results", None)
        session.set_setting(LAST_RUN, None)
    except LatencyError as error:
        session.note(AREA, "error", f"Not started: {error}")
    except Exception as error:  # noqa: BLE001 - one line for the user
        session.note(AREA, "error", f"Not started: {one_line(error)}")


@session.callback("latency")
def _cancel() -> None:
    run = running()
    if run is not None:
        run.job.cancel()


def _collect(run: LatencyRun) -> None:
    """Takes a finished measurement off the registry (once, whichever page sees it first), moves its results (or
    its one-line error) into the page state and, as the job's caller, stores the results in the history."""
    if not workspace_runs(AREA).take(run):
        return
    try:
        results = run.job.result(timeout=0)
    except LatencyError as error:
        kind = "info" if error.kind == "cancelled" else "error"
        session.note(AREA, kind, "Cancelled." if error.kind == "cancelled" else f"Latency run failed: {error}")
        return
    st.session_state.latency_results, warning = save_results(results)
    st.session_state.latency_specs = run.specs
    ids = [result.history_id for result in st.session_state.latency_results]
    if None not in ids:  # kept in the workspace, so that a refresh shows this run again (from the history)
        session.set_setting(LAST_RUN, {"ids": ids, "specs": [spec_to_dict(spec) for spec in run.specs]})
    if warning:
        session.note(AREA, "warning", warning)


def last_run() -> tuple[list, list]:
    """Returns this page's last finished run as (results, specs): from the page state, else (after a refresh)
    from the history rows the workspace kept; ([], []) when there is none or its rows are gone."""
    state = st.session_state
    if "latency_results" not in state:
        kept = session.setting(LAST_RUN) or {}
        try:
            state.latency_results = get_results(kept["ids"]) if kept else []
            state.latency_specs = [spec_from_dict(data) for data in kept.get("specs", [])]
        except (KeyError, TypeError, ValueError, sqlite3.DatabaseError):  # rows deleted or damaged: no panel
            state.latency_results, state.latency_specs = [], []
    return state.latency_results or [], state.get("latency_specs") or []


@st.fragment(run_every=0.5)
def job_progress() -> None:
    """Polls the running job twice a second without rerunning the page; reruns it once the job has ended."""
    run = running()
    if run is None:  # collected by another page of this workspace
        st.rerun()
    if run.job.done():
        _collect(run)
        st.rerun()
    queued = run.job.queue_text()  # waiting for a slot of the server's background pool (app.background)
    progress = run.job.progress()
    st.progress(0.0 if queued else progress.fraction, text=queued or progress_text(progress))
    st.button("Cancel", key="latency_cancel", on_click=_cancel, icon=":material/stop_circle:")


PHASES = {"estimate": "Estimating memory", "starting": "Starting the worker", "build": "Building the models",
          "compile": "Compiling", "warmup": "Warming up", "measure": "Measuring", "done": "Done", "failed": "Failed",
          "cancelled": "Cancelled"}


def progress_text(progress) -> str:
    """Returns e.g. 'Measuring 12/40 · SpineNet-49' for a Progress."""
    text = PHASES.get(progress.phase, progress.phase)
    if progress.total:
        text += f" {progress.done}/{progress.total}"
    if progress.model:
        text += f" · {escape_md(progress.model)}"
    return text


# The settings of the form, kept in the workspace (they survive switching tabs, a run, a cancel and a refresh).
SETTING = "latency"
WIDGET_KEYS = ("latency_models", "latency_size", "latency_height", "latency_head", "latency_batch", "latency_precision",
               "latency_device", "latency_iters", "latency_warmup", "latency_threads", "latency_channels_last",
               "latency_fold_bn", "latency_per_block")


def _defaults() -> dict:
    """The form's values before the user sets them: the sidebar's input size and head, one image, fp32."""
    return {"latency_models": [CURRENT, "resnet50-fpn"], "latency_size": sidebar.input_side(),
            "latency_height": sidebar.input_height(), "latency_head": sidebar.head(), "latency_batch": 1, "latency_precision": "fp32", "latency_device": "auto",
            "latency_iters": DEFAULT_ITERS, "latency_warmup": DEFAULT_WARMUP, "latency_threads": 0,
            "latency_channels_last": False, "latency_fold_bn": False, "latency_per_block": False}


def stored_settings() -> dict:
    """Returns the form's settings as last chosen in this workspace (defaults for those never chosen)."""
    stored = session.setting(SETTING) or {}
    return {key: stored.get(key, value) for key, value in _defaults().items()}


@session.callback("latency")
def _setting_changed(key: str) -> None:
    value = st.session_state.get(key)
    settings = dict(session.setting(SETTING) or {})
    settings[key] = list(value) if isinstance(value, (list, tuple)) else value
    session.set_setting(SETTING, settings)


def _valid(key: str, value, choices: list[str], precisions: list[str]):
    """Returns a stored value the widget can show, or None (an old choice that no longer exists)."""
    if key == "latency_models":
        return [choice for choice in value if choice in choices] if isinstance(value, list) else None
    options = {"latency_head": HEAD_CHOICES, "latency_precision": precisions, "latency_device": DEVICES}
    if key in options:
        return value if value in options[key] else None
    return value


DEVICES = ["auto", "cpu", "cuda"]


def timed_passes(iters: int, warmup: int, per_block: bool) -> int:
    """Forward passes per model: warm-up, timed (twice with per-block timing: one pass without and one with the
    hooks, plus a probe pass that finds the modules the forward calls) and the memory probe."""
    return warmup + iters * (2 if per_block else 1) + (1 if per_block else 0) + 1


def chosen_size(state) -> InputSize:
    """Returns the form's input size: its side, or (height, width) when a height other than the width is set."""
    height = state.get("latency_height")
    return normalize((int(height), int(state.latency_size))) if height else int(state.latency_size)


def estimated_seconds(choices: list[str], size: InputSize, head: str, batch: int, iters: int, warmup: int,
                      per_block: bool = False) -> float:
    """Returns the time estimate the run is checked against: every model's MACs at this size, for warm-up + timed
    passes + the memory probe, at the CPU speed `analysis.limits` assumes (pessimistic; a GPU is much faster)."""
    from spinescope.analysis.counting.fast import count_model
    from spinescope.analysis.latency.time_estimate import estimate_cpu_seconds

    passes = timed_passes(iters, warmup, per_block)
    return sum(estimate_cpu_seconds(count_model(_spec_for(choice), size, head, 1000, "gap").macs(""), passes * batch)
               for choice in choices)


def on_cpu(state) -> bool:
    """True when the form's run would time the CPU (chosen, or no GPU found)."""
    return state.latency_device == "cpu" or not cuda_available()


def estimate_line(state, estimate=None) -> str:
    """One line before a run: how long it should take and where the figure comes from; on the CPU from `estimate`
    (a TimeEstimate, with its spread), on a GPU the pessimistic MACs-based bound."""
    models = list(state.latency_models)
    if not models:
        return "Choose at least one model to measure."
    per_block = bool(state.latency_per_block)
    passes = timed_passes(int(state.latency_iters), int(state.latency_warmup), per_block)
    what = (f"{len(models)} model{'s' if len(models) != 1 else ''} × {passes} passes ({int(state.latency_warmup)} "
            "warm-up, " + (f"{int(state.latency_iters)} timed without and {int(state.latency_iters)} with the "
                           "per-block hooks, 1 probe, " if per_block else f"{int(state.latency_iters)} timed, ")
            + "1 memory probe)")
    try:
        if on_cpu(state):
            estimate = estimate or cpu_time_estimate(state)
        else:
            seconds = estimated_seconds(models, chosen_size(state), state.latency_head, int(state.latency_batch),
                                        int(state.latency_iters), int(state.latency_warmup), per_block)
            return (f"**Estimated time:** up to about {_duration(seconds)} for {what}, plus 3–5 s to start the "
                    "worker (on the GPU it is much shorter; a pessimistic estimate from the MACs, the same the run "
                    "is checked against).")
    except Exception as error:  # noqa: BLE001 - the run itself will say what is wrong
        return f"No estimate: {escape_md(one_line(error))}"
    load = (f"the load average now, {estimate.load:.1f} on {estimate.cores} core{'s' if estimate.cores != 1 else ''}"
            if estimate.load is not None else "an idle machine (no load average here)")
    return (f"**Estimated time:** about {_duration(estimate.seconds)} ({_duration(estimate.low_s)} to "
            f"{_duration(estimate.high_s)}) for {what}, the worker's start included; from "
            f"{escape_md(estimate.basis)} and {load}.")


def cpu_time_estimate(state):
    """Returns the CPU run's TimeEstimate (analysis.latency.time_estimate) for the form's models and settings, from
    the rate measured for the closest workload in the history and the machine's current load."""
    from spinescope.analysis.counting.fast import count_model
    from spinescope.analysis.latency.time_estimate import closest_rate, current_load, estimate_run

    specs = [_spec_for(choice) for choice in state.latency_models]
    size, batch = chosen_size(state), int(state.latency_batch)
    macs = sum(count_model(spec, size, state.latency_head, 1000, "gap").macs("") for spec in specs) * batch
    passes = timed_passes(int(state.latency_iters), int(state.latency_warmup), bool(state.latency_per_block))
    cores = os.cpu_count() or 1
    rate = closest_rate(specs, state.latency_precision, macs)
    return estimate_run(macs, passes, int(state.latency_threads) or cores, rate, current_load(), cores)


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:,.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def threads_note() -> str:
    """Why fewer threads can be faster on a shared CPU (with this machine's cores and load)."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    busy = f", load average {load:.1f}" if load is not None else ""
    return (f"This machine has {cores} CPU core{'s' if cores != 1 else ''}{busy}. On a shared CPU fewer threads "
            "can be faster: PyTorch splits every layer across its threads and waits for the slowest, so one "
            "thread that waits for a core busy with other work stalls each layer. Try 1 thread beside the default.")


def run_options(prefix: str, changed: dict, threads_help: str | None = None) -> None:
    """One row of how a run measures: device, timed and warm-up iterations, CPU threads (widgets `<prefix>_device`,
    `_iters`, `_warmup`, `_threads`, each passing its key to `changed["on_change"]`). Shared with the Sweeps tab."""
    cols = st.columns(4)
    cols[0].selectbox("Device", DEVICES, key=f"{prefix}_device", args=(f"{prefix}_device",), **changed)
    cols[1].number_input("Timed iterations", min_value=1, max_value=1000, step=1, key=f"{prefix}_iters",
                         args=(f"{prefix}_iters",), **changed)
    cols[2].number_input("Warm-up iterations", min_value=0, max_value=100, step=1, key=f"{prefix}_warmup",
                         args=(f"{prefix}_warmup",), **changed)
    cols[3].number_input("CPU threads (0 = default)", min_value=0, max_value=256, step=1, key=f"{prefix}_threads",
                         args=(f"{prefix}_threads",), help=threads_help, **changed)


def settings_form() -> None:
    choices = [CURRENT] + list(BUILTIN_NAMES) + [DESIGN_PREFIX + info.name for info in session.store().designs()]
    precisions = ["fp32", "bf16", "fp16"] if cuda_available() else ["fp32", "bf16"]
    state = st.session_state
    is_running = running() is not None
    defaults, stored, chosen = _defaults(), stored_settings(), session.setting(SETTING) or {}
    for key in WIDGET_KEYS:
        # From the workspace whenever the widget's state is missing (another tab was open, a refresh) and while a run
        # goes (the disabled widgets show what is being measured); the sidebar's choice while the user has not set
        # one here; otherwise the widget's own state.
        if key not in state or is_running or key not in chosen:
            value = _valid(key, stored[key], choices, precisions)
            state[key] = defaults[key] if value is None else value
    state.latency_models = [choice for choice in state.latency_models if choice in choices]
    state.latency_precision = state.latency_precision if state.latency_precision in precisions else "fp32"
    changed = {"on_change": _setting_changed, "disabled": is_running}
    st.multiselect("Models (timed interleaved, A B A B …, ratios to the first)", choices, key="latency_models",
                   format_func=_label, args=("latency_models",), **changed)
    cols = st.columns(5)
    cols[0].number_input("Input size (px)", min_value=LIMITS["min_input_size"], max_value=LIMITS["max_input_size"],
                         step=32, key="latency_size", args=("latency_size",), **changed)
    cols[1].number_input("Height (empty: square)", min_value=LIMITS["min_input_size"],
                         max_value=LIMITS["max_input_size"], step=32, key="latency_height", value=None,
                         placeholder="square", args=("latency_height",), **changed)
    cols[2].selectbox("Head", list(HEAD_CHOICES), key="latency_head", format_func=HEAD_CHOICES.get,
                      args=("latency_head",), **changed)
    cols[3].number_input("Batch", min_value=1, max_value=256, step=1, key="latency_batch", args=("latency_batch",),
                         **changed)
    cols[4].selectbox("Precision", precisions, key="latency_precision", args=("latency_precision",),
                      help="fp16 autocast is measured on a GPU only", **changed)
    run_options("latency", changed, threads_help=threads_note())
    cols = st.columns(4)
    cols[0].checkbox("channels_last", key="latency_channels_last", args=("latency_channels_last",), **changed)
    cols[1].checkbox("fold batch norm into convs", key="latency_fold_bn", args=("latency_fold_bn",), **changed)
    cols[2].checkbox("Time every block", key="latency_per_block", args=("latency_per_block",),
                     help="Also time every block, the stem, the endpoints and the head inside the forward pass "
                          "(each iteration runs one pass without and one with the timing hooks)", **changed)
    if not is_running:
        estimate = None
        if on_cpu(state) and state.latency_models:
            try:
                estimate = cpu_time_estimate(state)
            except Exception:  # noqa: BLE001 - estimate_line says what is wrong in one line
                estimate = None
        st.markdown(estimate_line(state, estimate))
        if estimate is not None and load_warning(estimate):
            st.warning(escape_md(load_warning(estimate)), icon=":material/speed:")
        if on_cpu(state):
            st.caption(escape_md(threads_note()))
    st.button("Measure latency", key="latency_start", on_click=_start, type="primary", disabled=is_running,
              icon=":material/timer:")


def render() -> None:
    st.markdown(f"**Device:** {escape_md(device_sentence())}")
    st.caption("Random weights, eval mode, inference only. Each run happens in a separate worker process with a "
               "time limit; a run that would not fit in memory is refused before it starts.")
    session.show_notes(AREA)
    settings_form()
    if running() is not None:
        job_progress()
    results, _ = last_run() if running() is None else ([], [])
    if results:
        st.markdown("##### This run")
        frame = results_frame(results)
        table(_shown(frame), "latency_results_table", "latency-run.csv", more=RESULT_MORE, csv_only=CSV_ONLY,
              hide_index=True, width="stretch", column_config=_number_columns(frame, "latency_results_table"))
        st.plotly_chart(results_figure(frame), key="latency_results_plot", config={"displaylogo": False})
    if running() is None:
        guarded("the per-block times", per_block_section, results)
    st.markdown("##### History")
    skipped: list[str] = []
    try:
        entries = list_results(limit=200, skipped=skipped)
    except Exception as error:  # noqa: BLE001 - the rest of the tab still works
        st.error(escape_md(f"History unavailable: {one_line(error)}"))
        return
    if skipped:  # the readable rows are shown; the damaged ones are named
        more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        st.warning(escape_md(one_line(f"Skipped {len(skipped)} damaged history row(s): {'; '.join(skipped[:3])}"
                                      f"{more}")))
    if not entries:
        st.caption("No stored results yet.")
        return
    history = results_frame(entries)
    table(_shown(history), "latency_history_table", "latency-history.csv", more=RESULT_MORE, csv_only=CSV_ONLY,
          hide_index=True, width="stretch", height=min(300, 35 * len(history) + 40),
          column_config=_number_columns(history, "latency_history_table"))
    st.plotly_chart(history_figure(history), key="latency_history_plot", config={"displaylogo": False})


# Short labels and narrow columns (pixels), so that the results and history tables fit 1366 px without scrolling
# sideways (also with "more columns" on); the model column takes the room left, up to its longest label. The CSV
# keeps the frame's full names and every column (the mean, the throughput and the thread count among them).
RESULT_COLUMNS = {
    "when (UTC)": st.column_config.DatetimeColumn("when (UTC)", format="MMM D HH:mm:ss", width=96),
    "spec": st.column_config.TextColumn("spec", help="the spec's content hash (first 8 hex digits): the same name "
                                             "with another hash is another architecture", width=72),
    "input px": INPUT_PX_COLUMN,
    "batch": column("batch", width=46), "head": st.column_config.TextColumn("head", width=64),
    "device": st.column_config.TextColumn("device", width=84),
    "precision": st.column_config.TextColumn("precision", width=58),
    "median ms": column("median ms", "median time of one forward pass (the CSV also has the mean and images/s)",
                        "%.2f", width=74),
    "p10 ms": column("p10 ms", "10th percentile", "%.2f", width=56),
    "p90 ms": column("p90 ms", "90th percentile", "%.2f", width=56),
    "peak memory MiB": column("peak MiB", "peak memory of the run (MiB)", "%.0f", width=62),
    "ratio to first": column("ratio", "median time / the first model's", "%.2fx", width=52),
}
RESULT_MORE = ("head", "device", "peak memory MiB")
CSV_ONLY = ("mean ms", "threads", "spec hash", "images/s")


def _shown(frame):
    """The results or history frame as the tables show it: no run id, the time as a timestamp (for its format)."""
    import pandas as pd

    return frame.drop(columns=["run"]).assign(**{"when (UTC)": pd.to_datetime(frame["when (UTC)"])})


def _number_columns(frame, key: str) -> dict:
    """The column config of the results or history table `key`: RESULT_COLUMNS, and the model column as wide as
    its labels need within the room left by the columns shown (with or without "more columns")."""
    more = bool(st.session_state.get(f"{key}_more"))
    shown = [name for name in frame if name in RESULT_COLUMNS and name not in CSV_ONLY
             and (more or name not in RESULT_MORE)]
    others = sum(RESULT_COLUMNS[name]["width"] for name in shown)
    return {**{name: config for name, config in RESULT_COLUMNS.items() if name in frame},
            "model": st.column_config.TextColumn("model", width=model_width(frame["model"], others))}


def per_block_section(results) -> None:
    """Per-block times of this run (a model chosen when several were timed per block), else of the latest stored
    per-block run of the current spec: the table, the sum-vs-end-to-end check, the hooks' overhead, and each
    block's MACs share against its time share."""
    from spinescope.analysis.latency.block_shares import latest_per_block, per_block_run, time_and_macs_shares

    specs = st.session_state.get("latency_specs") or []
    runs = [(spec, per_block_run(result)) for spec, result in zip(specs, results or [])]
    runs = [(spec, run) for spec, run in runs if run is not None]
    if runs:
        st.markdown("##### Per block (this run)")
        labels = [run.label for _, run in runs]
        index = 0
        if len(runs) > 1:
            chosen = st.selectbox("Model", labels, key="latency_per_block_model")
            index = labels.index(chosen) if chosen in labels else 0
        spec, run = runs[index]
    else:
        spec = session.current()
        run = latest_per_block(spec)
        if run is None:
            return
        st.markdown("##### Per block (latest stored run of the current spec)")
    st.caption(escape_md(run_caption(run)))
    frame = per_block_frame(run)
    table(frame, "latency_per_block_table", "latency-per-block.csv", hide_index=True, width="stretch",
          height=min(360, 35 * len(frame) + 40),
          column_config={name: st.column_config.NumberColumn(name, format="%.2f")
                         for name in ("median ms", "p10 ms", "p90 ms", "share %")})
    st.markdown(per_block_check_line(run))
    rows = time_and_macs_shares(spec, run)
    if rows:
        st.plotly_chart(shares_figure(rows, f"{run.label}: MACs share vs time share per block"),
                        key="latency_shares_plot", config={"displaylogo": False})
        st.caption("Each dot is a block (with the resampling that feeds it); both shares are of the timed blocks' "
                   "sums (stem conv, endpoints and head left out). Above the dashed diagonal a block takes more of "
                   "the time than of the MACs: latency-unfriendly (red: 1.5x or more).")

