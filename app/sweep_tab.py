"""Sweeps: latency (and the training-memory estimate) of the open spec and other models over input sizes,
batches and precisions, in the background in one latency worker process (`analysis.sweep.local`), with a progress
bar and a cancel button; every point goes in the history, as the CLI's `sweep` does. Plots: latency vs input size
per model, MACs vs latency with the Pareto front.

A running sweep belongs to the workspace (the `ws` address parameter), not to the browser session: a refresh of
the same address follows it, while another workspace never sees it. A watcher thread on the server stores its points
(history and workspace) when it ends, whether or not a page of the workspace is open then.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, replace

import streamlit as st

from spinescope.analysis.latency.errors import LatencyError
from spinescope.analysis.latency.request import DEFAULT_TIMEOUT_S, cuda_available
from spinescope.analysis.sweep.grid import (MAX_TEXT, GridError, RunOptions, batches, count_points, grid_points,
                                            input_sizes)
from spinescope.app import background, session
from spinescope.app.guard import one_line
from spinescope.app.identity import display_name
from spinescope.app.latency_tab import (CURRENT, DESIGN_PREFIX, DEVICES, HEAD_CHOICES, _label, _spec_for, progress_text,
                             run_options)
from spinescope.app.markup import escape_md
from spinescope.app.sweep_view import latency_vs_size_figure, macs_vs_latency_figure, points_frame
from spinescope.app.tables import INPUT_PX_COLUMN, column, table
from spinescope.app.workspace_runs import workspace_runs
from spinescope.spinenet.builtins import BUILTIN_NAMES

AREA = "sweeps"
SETTING = "sweep"
RESULTS = "sweep_last"
MAX_POINTS = 64
OPTIMIZER_CHOICES = {"sgd": "SGD with momentum", "adamw": "AdamW"}
# The points table: short labels and widths in pixels (the CSV keeps the frame's names), the spread and the history
# row on request, so that it fits at 1366 px.
POINT_COLUMNS = {
    "model": st.column_config.TextColumn("model", width=130),
    "input px": INPUT_PX_COLUMN,
    "batch": column("batch", width=50),
    "precision": st.column_config.TextColumn("precision", width=70),
    "median ms": column("median ms", "median latency of one forward pass of the batch, ms", "%.2f", width=76),
    "p10 ms": column("p10 ms", "10th percentile of the latency, ms", "%.2f", width=62),
    "p90 ms": column("p90 ms", "90th percentile of the latency, ms", "%.2f", width=62),
    "images/s": column("img/s", "throughput from the median, images per second", "%.1f", width=56),
    "GMACs per pass": column("GMACs", "billions of multiply-adds per forward pass (batch × per image)", "%.2f",
                             width=60),
    "inference MiB": column("infer MiB", "measured peak memory of inference, MiB", "%.0f", width=68),
    "training GiB (est.)": column("train GiB", "estimated peak memory of a training step with the chosen optimizer, "
                                  "GiB", "%.2f", width=70),
    "history id": column("history", "the point's row in the latency history (Latency tab, `spinescope "
                         "history`)", width=58),
}
POINT_MORE = ("p10 ms", "p90 ms", "history id")
WIDGET_KEYS = ("sweep_models", "sweep_sizes", "sweep_batches", "sweep_precisions", "sweep_head", "sweep_device",
               "sweep_iters", "sweep_warmup", "sweep_threads", "sweep_per_block", "sweep_optimizer")


@dataclass
class SweepRun:
    """A sweep in progress: its latency job (one worker for every point), the points and options, when it began,
    its workspace, and once collected what to tell the user ((kind, text), as `session.note` takes them)."""

    job: object
    points: list
    options: RunOptions
    started: float
    workspace_id: str = ""
    outcome: tuple[str, str] | None = None


def running() -> SweepRun | None:
    """Returns this workspace's running (or finished, not yet collected) sweep, or None."""
    return workspace_runs(AREA).current()


def _defaults() -> dict:
    return {"sweep_models": [CURRENT, "resnet50-fpn"], "sweep_sizes": "128,192,256", "sweep_batches": "1",
            "sweep_precisions": ["fp32"], "sweep_head": "none", "sweep_device": "auto", "sweep_iters": 5,
            "sweep_warmup": 1, "sweep_threads": 0, "sweep_per_block": False, "sweep_optimizer": "sgd"}


def _precisions() -> list[str]:
    return ["fp32", "bf16", "fp16"] if cuda_available() else ["fp32", "bf16"]


def _valid(key: str, value, choices: list[str]):
    """Returns a stored value the widget can show, or None (an option that no longer exists, a wrong type)."""
    lists = {"sweep_models": choices, "sweep_precisions": _precisions()}
    if key in lists:  # a set and no repeats: linear in the stored list, whatever its length
        allowed = set(lists[key])
        return list(dict.fromkeys(item for item in value if isinstance(item, str) and item in allowed)) \
            if isinstance(value, list) else None
    options = {"sweep_head": HEAD_CHOICES, "sweep_device": DEVICES, "sweep_optimizer": OPTIMIZER_CHOICES}
    if key in options:
        return value if value in options[key] else None
    if key in ("sweep_sizes", "sweep_batches"):  # a text over the form's bound is not shown (nor parsed) again
        return value if isinstance(value, str) and len(value) <= MAX_TEXT else None
    if key == "sweep_per_block":
        return value if isinstance(value, bool) else None
    ranges = {"sweep_iters": (1, 1000), "sweep_warmup": (0, 100), "sweep_threads": (0, 256)}
    low, high = ranges[key]
    return value if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high else None


def measured_spec(choice: str):
    """Returns the spec a sweep measures for `choice`, named as the app shows it (`identity.display_name`), so that
    its points, plots and history rows tell an edited spec from the built-in it started from."""
    spec = _spec_for(choice)
    return replace(spec, name=session.current_name() if choice == CURRENT else display_name(spec))


@session.callback(AREA)
def _setting_changed(key: str) -> None:
    value = st.session_state.get(key)
    if isinstance(value, str) and len(value) > MAX_TEXT:  # the browser stops at max_chars; never stored longer
        return
    settings = dict(session.setting(SETTING) or {})
    settings[key] = list(value) if isinstance(value, (list, tuple)) else value
    session.set_setting(SETTING, settings)


def grid_from(state) -> tuple[list, RunOptions]:
    """Returns (the grid's points, the run options) from the form; raises GridError or LatencyError with one line
    naming the bad value (escaped)."""
    if not state.sweep_models:
        raise GridError("choose at least one model")
    if not state.sweep_precisions:
        raise GridError("choose at least one precision")
    sizes = input_sizes(state.sweep_sizes)
    batch_list = batches(state.sweep_batches)
    models, precision_list = list(dict.fromkeys(state.sweep_models)), list(dict.fromkeys(state.sweep_precisions))
    # Counted as a product before any spec is loaded or any point built.
    count_points(len(models), len(sizes), len(batch_list), len(precision_list), MAX_POINTS,
                 " (or the CLI's `sweep`)")
    specs = [(choice, measured_spec(choice), None) for choice in models]
    points = grid_points(specs, sizes, batch_list, precision_list, MAX_POINTS)
    options = RunOptions(head=state.sweep_head, device=state.sweep_device, iters=int(state.sweep_iters),
                         warmup=int(state.sweep_warmup), threads=int(state.sweep_threads) or None,
                         timeout=DEFAULT_TIMEOUT_S, per_block=bool(state.sweep_per_block),
                         optimizer=state.sweep_optimizer)
    return points, options


@session.callback(AREA)
def _start() -> None:
    from spinescope.analysis.sweep.local import local_job

    try:
        points, options = grid_from(st.session_state)
        job = local_job(points, options)  # checks every point's options (LatencyError) before anything starts
        registry, store, workspace = workspace_runs(AREA), session.store(), session.workspace_id()

        def start() -> SweepRun:
            queued = background.submit_latency(session.browser_id(), f"sweep {workspace[:8]}", job)
            run = SweepRun(queued, points, options, time.time(), workspace)
            threading.Thread(target=_watch, args=(run, registry, store), name=f"sweep-{workspace[:8]}",
                             daemon=True).start()
            return run

        run = registry.start(start)
        if run is None:
            raise GridError("a sweep is already running in this workspace")
        st.session_state.sweep_watched = run
    except (GridError, LatencyError, background.BackgroundError) as error:
        session.note(AREA, "error", f"Not started: {error}")


@session.callback(AREA)
def _cancel() -> None:
    run = running()
    if run is not None:
        run.job.cancel()


def _watch(run: SweepRun, registry, store) -> None:
    """Runs on the server beside the sweep: collects it when its job ends."""
    while not run.job.done():
        time.sleep(0.5)
    _collect(run, registry, store)


def _collect(run: SweepRun, registry, store) -> None:
    """Stores a finished sweep's points in the history and their records in its workspace's settings (for the
    plots, in any page opened later), sets `run.outcome`, then takes the run off the registry: a page that sees it
    gone finds its points stored. Needs no page; the watcher is its one caller."""
    from spinescope.analysis.sweep.local import local_records

    try:
        results = run.job.result(timeout=0)
    except LatencyError as error:
        cancelled = error.kind == "cancelled"
        run.outcome = ("info", "Sweep cancelled; no point stored.") if cancelled else \
            ("error", f"Sweep failed: {error}")
    else:
        records, not_saved = local_records(run.points, results, run.options)
        kept = [{key: value for key, value in record.items() if key != "blocks"} for record in records]
        last = {"records": kept, "finished": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                "seconds": time.time() - run.started}
        try:
            store.update_setting(run.workspace_id, RESULTS, last)  # only this key: a page may write others
        except Exception as error:  # noqa: BLE001 - the history rows may be there; say what was not kept
            run.outcome = ("error", f"Sweep done: {len(records)} point(s) measured, but the workspace could not "
                                    f"keep them: {one_line(error)}")
            return
        run.outcome = ("warning", f"Sweep done: {len(records)} point(s) measured and kept in this workspace; "
                                  f"{not_saved}") if not_saved else \
            ("success", f"Sweep done: {len(records)} point(s) measured and stored in the history.")
    finally:
        registry.take(run, run.workspace_id)


def _show_finished() -> None:
    """Once the sweep this page started or followed has been collected: reads the workspace's settings again
    (the watcher wrote the points there) and notes its outcome."""
    watched = st.session_state.get("sweep_watched")
    if watched is None or watched is running() or watched.outcome is None:
        return
    del st.session_state.sweep_watched
    st.session_state.settings = session.store().settings(session.workspace_id())
    session.note(AREA, *watched.outcome)


def _points(count: int) -> str:
    return f"{count} point{'' if count == 1 else 's'}"


@st.fragment(run_every=0.5)
def sweep_progress() -> None:
    """Polls the running sweep twice a second without rerunning the page; reruns it once the sweep has ended."""
    run = running()
    if run is None:  # collected by the watcher: the page reruns to show its points
        st.rerun()
    queued = run.job.queue_text()
    if queued:  # waiting for a slot of the server's background pool (app.background)
        st.progress(0.0, text=f"{_points(len(run.points))} · {queued} · {time.time() - run.started:.0f} s")
    else:
        progress = run.job.progress()
        st.progress(progress.fraction, text=f"{_points(len(run.points))} · {progress_text(progress)} · "
                                            f"{time.time() - run.started:.0f} s")
    st.button("Cancel sweep", key="sweep_cancel", on_click=_cancel, icon=":material/stop_circle:")


def settings_form(is_running: bool) -> None:
    choices = [CURRENT] + list(BUILTIN_NAMES) + [DESIGN_PREFIX + info.name for info in session.store().designs()]
    state, defaults = st.session_state, _defaults()
    stored = session.setting(SETTING) or {}
    for key in WIDGET_KEYS:
        # From the workspace when the widget's state is missing (another tab was open, a refresh) and while a
        # sweep runs (the disabled form shows what is measured); otherwise the widget's own state.
        if key not in state or is_running:
            value = _valid(key, stored.get(key, defaults[key]), choices)
            state[key] = defaults[key] if value is None else value
    state.sweep_models = [choice for choice in state.sweep_models if choice in choices]
    state.sweep_precisions = [item for item in state.sweep_precisions if item in _precisions()]
    changed = {"on_change": _setting_changed, "disabled": is_running}
    st.multiselect("Models (the open spec and any to compare)", choices, key="sweep_models", format_func=_label,
                   args=("sweep_models",), **changed)
    cols = st.columns(4)
    cols[0].text_input("Input sizes (px, comma list)", key="sweep_sizes", args=("sweep_sizes",),
                       placeholder="128,192,256", max_chars=MAX_TEXT, **changed)
    cols[1].text_input("Batches (comma list)", key="sweep_batches", args=("sweep_batches",), placeholder="1,2",
                       max_chars=MAX_TEXT, **changed)
    cols[2].multiselect("Precisions", _precisions(), key="sweep_precisions", args=("sweep_precisions",),
                        help="fp16 autocast is measured on a GPU only", **changed)
    cols[3].selectbox("Head", list(HEAD_CHOICES), key="sweep_head", format_func=HEAD_CHOICES.get,
                      args=("sweep_head",), **changed)
    run_options("sweep", changed)
    cols = st.columns(4)
    cols[0].selectbox("Optimizer (training memory)", list(OPTIMIZER_CHOICES), key="sweep_optimizer",
                      format_func=OPTIMIZER_CHOICES.get, args=("sweep_optimizer",), **changed)
    cols[1].checkbox("Time every block", key="sweep_per_block", args=("sweep_per_block",), **changed)
    if not is_running:
        try:
            points, _ = grid_from(state)
            st.caption(escape_md(f"{len(points)} point(s), all timed interleaved in one worker process on this "
                                 f"machine; each point also goes in the latency history."))
            busy = cpu_busy_warning(state)
            if busy:
                st.warning(escape_md(busy), icon=":material/speed:")
        except (GridError, LatencyError) as error:
            st.caption(escape_md(f"Not ready: {error}"))
        except Exception as error:  # noqa: BLE001 - the start button says it again
            st.caption(escape_md(f"Not ready: {one_line(error)}"))
    st.button("Start sweep", key="sweep_start", on_click=_start, type="primary", disabled=is_running,
              icon=":material/play_arrow:")


def cpu_busy_warning(state) -> str | None:
    """The Latency tab's busy-machine line for a sweep timed on the CPU, or None (a GPU run, an idle machine)."""
    from spinescope.analysis.latency.time_estimate import busy_warning, current_load

    if state.sweep_device != "cpu" and cuda_available():
        return None
    loads = current_load()
    return busy_warning(loads[0] if loads else None, os.cpu_count() or 1)


def results_section() -> None:
    last = session.setting(RESULTS) or {}
    records = last.get("records") or []
    if not records:
        st.caption("No sweep yet in this workspace. Every point of a sweep also goes in the latency history "
                   "(Latency tab, and `spinescope history`).")
        return
    st.markdown(f"##### Last sweep ({_points(len(records))}, finished {escape_md(last.get('finished', '?'))} UTC, "
                f"{last.get('seconds', 0):.0f} s)")
    frame = points_frame(records)
    table(frame, "sweep_points_table", "sweep-points.csv", hide_index=True, width="stretch",
          height=min(360, 35 * len(frame) + 40), column_config=POINT_COLUMNS, more=POINT_MORE)
    left, right = st.columns(2, gap="medium")
    left.plotly_chart(latency_vs_size_figure(records), key="sweep_latency_plot", config={"displaylogo": False})
    right.plotly_chart(macs_vs_latency_figure(records), key="sweep_pareto_plot", config={"displaylogo": False})
    st.caption("Pareto front: the points with the most MACs for their latency (no other point has as many MACs "
               "in less time). Latency is per forward pass of the whole batch.")


def render() -> None:
    st.caption("Latency and the training-memory estimate over a grid of models, input sizes, batches and "
               "precisions, measured in the background in one worker process (random weights, eval mode). "
               "For a Ray cluster use the CLI: `spinescope sweep ... --ray ADDRESS`.")
    run = running()
    if run is not None:
        st.session_state.sweep_watched = run
    _show_finished()
    session.show_notes(AREA)
    settings_form(run is not None)
    if run is not None:
        sweep_progress()
    results_section()
