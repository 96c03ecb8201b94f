"""The Search tab's results: the sampled population's distributions, and a run's status, MACs vs objective with
the Pareto front, candidates table and distributions; any candidate opens in the editor."""
from __future__ import annotations

from dataclasses import replace

import streamlit as st

from spinescope.analysis.search import best_candidate, reference_metrics
from spinescope.analysis.search.space import space_from_dict
from spinescope.app import search_form as form
from spinescope.app import session
from spinescope.app.guard import one_line
from spinescope.app.markup import escape_md
from spinescope.app.search_runs import AREA, SearchRun, resume, search_store, workspace_run_ids
from spinescope.app.search_view import candidates_frame, distributions_figure, scatter_figure, summary_frame
from spinescope.app.tables import column, table
from spinescope.spinenet.spec import spec_from_dict
from spinescope.spinenet.validate import SpecError

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
    frame = summary_frame(sampled["metrics"], sampled["references"])
    references = list(sampled["references"])
    config = {"metric": st.column_config.TextColumn("metric", width=160),
              **{name: column(name, None, "%.4g", width=62) for name in ("min", "p10", "median", "p90", "max")},
              **{name: column(name, f"{name}'s value, counted as the space counts its candidates", "%.4g",
                              width=100) for name in references},
              **{f"{name} %": column("pct", f"percent of the population below {name} (ties count half)", "%.0f",
                                     width=50) for name in references}}
    table(frame, "search_population_summary", "search-population.csv", hide_index=True, width="stretch",
          column_config=config)


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
        st.button("Resume run", key="search_resume", on_click=resume, args=(run_id,), icon=":material/replay:",
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
