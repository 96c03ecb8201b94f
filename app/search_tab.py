"""Search: define a space (seed, moves, MACs and params ranges) and sample it to see its distributions beside
SpineNet-49's and ResNet-50-FPN's; run a random search or regularized evolution (`analysis.search`) in the
background, follow it, cancel it, resume it; see its candidates as MACs vs objective with the Pareto front and as a
table, and open any of them in the editor.

A running search belongs to the workspace (the `ws` address parameter), as a sweep does: a refresh of the same
address follows it, another workspace never sees it. Its candidates are stored in the search file
(`search.sqlite` beside the workspace file, as `spinescope search` uses it) the moment each is evaluated; the
workspace keeps the ids of the runs started in it, so a run stopped by a server restart can be resumed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st

from spinescope.analysis.search import SearchError, Store, best_candidate, create_run, reference_metrics, sample_many
from spinescope.analysis.search.space import space_from_dict
from spinescope.analysis.search.store import StoreError
from spinescope.app import search_form as form
from spinescope.app import session
from spinescope.app.guard import one_line
from spinescope.app.markup import escape_md
from spinescope.app.search_view import candidates_frame, distributions_figure, scatter_figure
from spinescope.app.tables import column, table
from spinescope.app.workspace_runs import workspace_runs
from spinescope.spinenet.spec import spec_from_dict
from spinescope.spinenet.validate import SpecError

AREA = "search"
KIND = "search"
SETTING = "search"
RUNS = "search_runs"  # workspace setting: ids of the runs started in it, oldest first
MAX_RUNS_KEPT = 20
CANDIDATE_COLUMNS = {
    "idx": column("idx", "the candidate's index in the run", width=44),
    "origin": st.column_config.TextColumn("origin", help="sample: drawn from the space; mutation: one move applied "
                                          "to a tournament's winner", width=70),
    "parent": column("parent", "index of the candidate it was mutated from", width=52),
    "move": st.column_config.TextColumn("move", width=150),
    "GMACs": column("GMACs", "billions of multiply-adds, backbone + RetinaNet head, batch 1", "%.2f", width=60),
    "M params": column("M params", "parameters, millions, backbone + head", "%.2f", width=66),
    "P3 RF px": column("P3 RF px", "theoretical receptive field of P3, pixels", width=62),
    "objective": column("objective", "higher is better (see the run's objective above)", "%.4g", width=70),
    "status": st.column_config.TextColumn("status", width=56),
    "name": st.column_config.TextColumn("name", width=220),
}


@dataclass
class SearchRun:
    """A search running in this server: its job (`analysis.search.SearchJob`), run id, start time, workspace."""

    job: object
    run_id: str
    started: float
    workspace_id: str


@st.cache_resource(show_spinner=False)
def _store_at(path: str) -> Store:
    return Store(path)


def search_store() -> Store:
    """Returns the search file beside this server's workspace file (`search.sqlite` in the data directory, the file
    `spinescope search` uses by default)."""
    return _store_at(str(Path(session.store().path).parent / "search.sqlite"))


def live_run() -> SearchRun | None:
    """Returns this workspace's running search, or None; a search found finished is taken off the registry (and a
    run that raised is noted in one line)."""
    registry = workspace_runs(KIND)
    run = registry.current()
    if run is None or not run.job.done():
        return run
    if registry.take(run):
        try:
            run.job.result(timeout=0)
        except Exception as error:  # noqa: BLE001 - the run is marked in the store; say why here
            session.note(AREA, "error", f"Search {run.run_id} stopped: {one_line(error)}")
    return None


def workspace_run_ids() -> list[str]:
    """Returns the ids of the runs started in this workspace that the search file still has, newest first."""
    kept = session.setting(RUNS) or []
    store = search_store()
    return [run_id for run_id in reversed(kept) if isinstance(run_id, str) and store.has_run(run_id)]


def _remember(run_id: str) -> None:
    kept = [item for item in (session.setting(RUNS) or []) if item != run_id]
    session.set_setting(RUNS, (kept + [run_id])[-MAX_RUNS_KEPT:])


def _launch(store: Store, run_id: str) -> None:
    from spinescope.analysis.search import start_search

    config = store.run(run_id)["config"]
    workers = 0 if config["objective"] == "cost" else 1  # one training at a time on a shared server
    workspace = session.workspace_id()
    run = workspace_runs(KIND).start(lambda: SearchRun(start_search(store, run_id, workers=workers), run_id,
                                                       time.time(), workspace))
    if run is None:
        session.note(AREA, "error", "Not started: a search is already running in this workspace")
        return
    st.session_state.search_run_view = run_id


@session.callback(AREA)
def _setting_changed(key: str) -> None:
    value = st.session_state.get(key)
    if isinstance(value, str) and len(value) > form.MAX_TEXT:
        return
    settings = dict(session.setting(SETTING) or {})
    settings[key] = list(value) if isinstance(value, (list, tuple)) else value
    session.set_setting(SETTING, settings)


@session.callback(AREA)
def _start() -> None:
    if live_run() is not None:
        session.note(AREA, "error", "Not started: a search is already running in this workspace")
        return
    try:
        space = form.space_from(st.session_state, session.current(), session.current_name())
        config = form.config_from(st.session_state, space)
        store = search_store()
        run_id = create_run(store, config)
    except (form.FormError, SearchError, StoreError) as error:
        session.note(AREA, "error", f"Not started: {error}")
        return
    _remember(run_id)
    _launch(store, run_id)


@session.callback(AREA)
def _resume(run_id: str) -> None:
    if live_run() is not None:
        session.note(AREA, "error", "Not resumed: a search is already running in this workspace")
        return
    if run_id not in workspace_run_ids():
        session.note(AREA, "error", f"Not resumed: run {run_id!r:.80} is not one of this workspace's")
        return
    _launch(search_store(), run_id)


@session.callback(AREA)
def _cancel() -> None:
    run = workspace_runs(KIND).current()
    if run is not None:
        run.job.cancel()


@session.callback(AREA)
def _sample() -> None:
    try:
        space = form.space_from(st.session_state, session.current(), session.current_name())
        count, seed = form.sample_count(st.session_state), form.bounded("seed", st.session_state.search_seed, 0,
                                                                        form.MAX_SEED)
        started = time.perf_counter()
        samples, draws = sample_many(space, count, seed)
        seconds = time.perf_counter() - started
    except (form.FormError, ValueError) as error:  # SpaceError: no admissible draw
        session.note(AREA, "error", f"Not sampled: {error}")
        return
    st.session_state.search_sampled = {"metrics": [metrics for _, metrics in samples], "draws": draws,
                                       "seconds": seconds, "seed": seed, "describe": space.describe(),
                                       "references": reference_metrics(space)}


@session.callback(AREA)
def _open(run_id: str, rendered: int) -> None:
    idx = st.session_state.get(f"search_pick_{run_id}")
    row = next((item for item in search_store().candidates(run_id) if item["idx"] == idx), None)
    if row is None:
        session.note(AREA, "error", f"Not opened: run {run_id} has no candidate {idx!r:.40}")
        return
    try:
        spec = replace(spec_from_dict(row["spec"]), name=f"search-{run_id}-{idx}")
    except (SpecError, KeyError, TypeError, ValueError) as error:
        session.note(AREA, "error", f"Not opened: candidate {idx} of run {run_id}: {one_line(error)}")
        return
    session.load_spec(AREA, spec, f"open candidate {idx} of search {run_id}", rendered=rendered,
                      message=f"Opened candidate {idx} of run {run_id} as {spec.name}; Explore and Edit show it.")


def _picked(key: str) -> None:
    st.session_state[f"{key}_chosen"] = True


@st.fragment(run_every=0.5)
def progress_line() -> None:
    """Polls the running search twice a second without rerunning the page; reruns it once the search has ended."""
    run = workspace_runs(KIND).current()
    if run is None or run.job.done():
        st.rerun()
    done, budget = run.job.progress()
    st.progress(min(1.0, done / max(1, budget)), text=escape_md(
        f"run {run.run_id}: {done} of {budget} candidates evaluated · {time.time() - run.started:.0f} s"))
    st.button("Cancel search", key="search_cancel", on_click=_cancel, icon=":material/stop_circle:")


def settings_form(is_running: bool, spinenet_open: bool) -> None:
    state, stored = st.session_state, session.setting(SETTING) or {}
    for key, default in form.DEFAULTS.items():
        if key not in state:  # from the workspace when the widget's state is missing (another tab, a refresh)
            value = form.valid(key, stored.get(key, default))
            state[key] = default if value is None else value
    if not spinenet_open and state.search_seed_from == "current":
        state.search_seed_from = "resnet50"
    changed = {"on_change": _setting_changed}
    seeds = list(form.SEEDS) if spinenet_open else ["resnet50"]
    cols = st.columns([1.2, 2, 1, 1.4])
    cols[0].selectbox("Seed of the space", seeds, key="search_seed_from", format_func=form.SEEDS.get,
                      args=("search_seed_from",), help="ResNet-50's blocks as a scale-permuted list (the paper's "
                      "start), or the open spec when it is a SpineNet", **changed)
    cols[1].multiselect("Moves", list(form.MOVES), key="search_moves", args=("search_moves",),
                        help="permute: block order; parents: each block's two inputs; levels: -1..+2 per block; "
                             "types: bottleneck or residual", **changed)
    cols[2].selectbox("Algorithm", list(form.ALGORITHMS), key="search_algorithm", args=("search_algorithm",),
                      **changed)
    cols[3].selectbox("Objective", list(form.OBJECTIVES), key="search_objective", format_func=form.OBJECTIVE_LABELS.get,
                      args=("search_objective",), help="cost: the receptive field of P3 (pixels) within the "
                      "constraints, milliseconds per candidate; proxy AP: AP@[.5:.95] of a short training on a "
                      "COCO-format folder, a proxy, not COCO AP", **changed)
    cols = st.columns(5)
    cols[0].text_input("MACs range (GMACs, LOW:HIGH)", key="search_gmacs", args=("search_gmacs",),
                       placeholder="e.g. 80:95", max_chars=form.MAX_TEXT, help="billions of multiply-adds, backbone + "
                       "RetinaNet head at the seed's input size, batch 1; empty: no bound", **changed)
    cols[1].text_input("Params range (M, LOW:HIGH)", key="search_mparams", args=("search_mparams",),
                       placeholder="e.g. :30", max_chars=form.MAX_TEXT, help="millions of parameters, backbone + head",
                       **changed)
    cols[2].number_input("Budget (candidates)", min_value=1, step=1, key="search_budget", args=("search_budget",),
                         help=f"at most {form.MAX_BUDGET['cost']:,} (cost) or {form.MAX_BUDGET['proxy-ap']} "
                              "(proxy AP) here", **changed)
    cols[3].number_input("Population (evolution)", min_value=2, step=1, key="search_population",
                         args=("search_population",), help="evolution's population P (tournament 3, rounds of 4)",
                         **changed)
    cols[4].number_input("Random seed", min_value=0, max_value=form.MAX_SEED, step=1, key="search_seed",
                         args=("search_seed",), **changed)
    if state.search_objective == "proxy-ap":
        cols = st.columns([3, 1])
        cols[0].text_input("Dataset folder (COCO format)", key="search_dataset", args=("search_dataset",),
                           max_chars=form.MAX_TEXT, placeholder="/path/made/by/spinescope-make-dataset",
                           help="a COCO-format directory: annotations/train.json, annotations/val.json and the "
                                "images (`spinescope make-dataset DIR`)", **changed)
        cols[1].number_input("Training steps", min_value=1, step=1, key="search_steps", args=("search_steps",),
                             help=f"per candidate, at most {form.MAX_STEPS} here", **changed)
    cols = st.columns([1, 1, 1, 1.6], vertical_alignment="bottom")
    cols[0].number_input("Samples", min_value=1, step=1, key="search_samples", args=("search_samples",),
                         help=f"valid candidates to draw for the distributions, at most {form.MAX_SAMPLES:,}",
                         **changed)
    cols[1].button("Sample the space", key="search_sample", on_click=_sample, icon=":material/scatter_plot:")
    cols[2].button("Start search", key="search_start", on_click=_start, type="primary", disabled=is_running,
                   icon=":material/play_arrow:")


def population_section() -> None:
    sampled = st.session_state.get("search_sampled")
    if not sampled:
        st.caption("Sample the space to see its distributions: MACs, params and the receptive field of each output "
                   "level, with SpineNet-49 and ResNet-50-FPN marked (counted as the space counts its candidates).")
        return
    count = len(sampled["metrics"])
    st.markdown(escape_md(f"Population: {count} valid samples from {sampled['draws']} draws, counted in "
                          f"{sampled['seconds']:.1f} s (seed {sampled['seed']})"))
    st.caption(escape_md("; ".join(sampled["describe"])))
    st.plotly_chart(distributions_figure(sampled["metrics"], sampled["references"],
                                         "The space's distributions (EDF: fraction of samples at or below)"),
                    key="search_population_plot", config={"displaylogo": False})


def _status_line(run: dict, rows: list[dict], live: bool) -> str:
    config = run["config"]
    failed = sum(1 for row in rows if row["status"] == "failed")
    status = run["status"]
    if status == "running" and not live:
        status = "stopped (the server stopped while it ran)"
    return (f"Run {run['id']}: {status}, {len(rows)} of {config['budget']} candidates ({failed} failed); "
            f"{config['algorithm']}, seed {config['seed']}; objective: {form.objective_label(config)}"
            + (f". {run['message']}" if run["message"] and run["status"] != "running" else ""))


def run_section(live: SearchRun | None) -> None:
    run_ids = workspace_run_ids()
    if not run_ids:
        st.caption("No search yet in this workspace. `spinescope search` runs the same search from the command line.")
        return
    if st.session_state.get("search_run_view") not in run_ids:
        st.session_state.search_run_view = run_ids[0]
    st.selectbox("Run", run_ids, key="search_run_view", help="the runs started in this workspace, newest first")
    run_id = st.session_state.search_run_view
    store = search_store()
    run, rows = store.run(run_id), store.candidates(run_id)
    is_live = live is not None and live.run_id == run_id
    st.markdown(escape_md(_status_line(run, rows, is_live)))
    if run["status"] != "done" and live is None:
        st.button("Resume run", key="search_resume", on_click=_resume, args=(run_id,), icon=":material/replay:",
                  help="continue where it stopped, with its stored settings (its candidates so far are kept)")
    if not rows:
        return
    config = run["config"]
    space = space_from_dict(config["space"])
    references = reference_metrics(space)
    level = f"rf_P{space.seed.min_level}"
    points = {name: (values["macs"], values[level]) for name, values in references.items()
              if config["objective"] == "cost" and level in values}
    left, right = st.columns([3, 2], gap="medium")
    left.plotly_chart(scatter_figure(rows, form.objective_label(config), points), key="search_scatter",
                      config={"displaylogo": False})
    with right:
        open_candidate(run_id, rows)
    frame = candidates_frame(rows)
    table(frame, "search_candidates", f"search-{run_id}.csv", hide_index=True, width="stretch",
          height=min(360, 35 * len(frame) + 40), column_config=CANDIDATE_COLUMNS)
    done = [row["metrics"] for row in rows if row["status"] == "done"]
    if done:
        st.plotly_chart(distributions_figure(done, references, "The run's candidates beside SpineNet-49 and "
                                             "ResNet-50-FPN (EDF)"), key="search_run_distributions",
                        config={"displaylogo": False})


def open_candidate(run_id: str, rows: list[dict]) -> None:
    """The candidate picker (the best by default) and its "Open in editor" button."""
    best = best_candidate(rows)
    choices = [row["idx"] for row in rows]
    by_idx = {row["idx"]: row for row in rows}
    key = f"search_pick_{run_id}"
    # The best one until the user picks another (the best changes while the run goes on).
    if not st.session_state.get(f"{key}_chosen") or st.session_state.get(key) not in choices:
        st.session_state[key] = best["idx"] if best else choices[0]
    st.markdown("##### Open a candidate")
    st.selectbox("Candidate to open", choices, key=key, format_func=lambda idx: _pick_label(by_idx[idx], best),
                 on_change=_picked, args=(key,))
    st.button("Open in editor", key="search_open", on_click=_open, args=(run_id, session.revision()),
              icon=":material/edit:", type="primary",
              help="loads it as the workspace's spec (Undo goes back); Explore and Edit show it")
    row = by_idx[st.session_state[key]]
    parent = f", mutated from #{row['parent_idx']} ({row['move']})" if row["parent_idx"] is not None else ""
    st.caption(escape_md(f"#{row['idx']} {row['name']}: {row['origin']}{parent}; {len(row['spec']['blocks'])} "
                         f"blocks; opens as search-{run_id}-{row['idx']}."))


def _pick_label(row: dict, best: dict | None) -> str:
    value = "failed" if row["objective"] is None else f"objective {row['objective']:.4g}"
    return (f"#{row['idx']} {'(best) ' if best is not None and row['idx'] == best['idx'] else ''}· {value} · "
            f"{row['macs'] / 1e9:.2f} GMACs · {row['params'] / 1e6:.2f} M params")


def render() -> None:
    st.caption("Architecture search over the paper's space (`spinescope space`, `spinescope search`): sample the "
               "space to see its distributions, run random search or regularized evolution in the background, "
               "and open any candidate in the editor. MACs are multiply-adds (backbone + RetinaNet head, batch 1); "
               "params in millions.")
    live = live_run()
    session.show_notes(AREA)
    spec = session.current()
    settings_form(live is not None, spec.family == "spinenet")
    if live is not None:
        progress_line()
    population_section()
    st.divider()
    run_section(live)
