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

import streamlit as st

from spinescope.analysis.search import SearchError, create_run, reference_metrics, sample_many
from spinescope.analysis.search.store import StoreError
from spinescope.app import search_form as form
from spinescope.app import session
from spinescope.app.search_results import population_section, run_section
from spinescope.app.search_runs import (AREA, SETTING, launch, remember, live_run, progress_line,
                                        search_store)


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
    remember(run_id)
    launch(store, run_id)


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
