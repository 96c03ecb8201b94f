"""The Search tab's runs: the search file, this workspace's runs (a running one is kept on the server by workspace
id, as a sweep is: a refresh of the same address follows it, another workspace never sees it), starting, following,
cancelling and resuming them."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from spinescope.analysis.search import Store
from spinescope.app import background, session
from spinescope.app.guard import one_line
from spinescope.app.markup import escape_md
from spinescope.app.workspace_runs import workspace_runs

AREA = "search"
KIND = "search"
SETTING = "search"
RUNS = "search_runs"  # workspace setting: ids of the runs started in it, oldest first
MAX_RUNS_KEPT = 20


@dataclass
class SearchRun:
    """A search on this server: its job (an `analysis.search.SearchJob` queued in the server's background pool,
    `app.background`), run id, the time it was asked for, workspace."""

    job: object
    run_id: str
    started: float
    workspace_id: str
    trains: bool = False


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


def remember(run_id: str) -> None:
    """Adds `run_id` to this workspace's runs (the last MAX_RUNS_KEPT)."""
    kept = [item for item in (session.setting(RUNS) or []) if item != run_id]
    session.set_setting(RUNS, (kept + [run_id])[-MAX_RUNS_KEPT:])


def launch(store: Store, run_id: str) -> bool:
    """Queues (or resumes) run `run_id` as this workspace's search in the server's background pool, which runs it
    when a slot is free (`app.background`: bounded, fair across browsers); False, with a one-line note, when one is
    already running here or the pool's size is misconfigured."""
    from spinescope.analysis.search.engine import SearchJob

    trains = store.run(run_id)["config"]["objective"] != "cost"
    workspace = session.workspace_id()
    # One training at a time per search (workers 1) on a shared server; cost candidates take milliseconds inline.
    try:
        run = workspace_runs(KIND).start(lambda: SearchRun(
            background.submit_search(session.browser_id(), f"search {run_id}",
                                     SearchJob(store, run_id, workers=1 if trains else 0)),
            run_id, time.time(), workspace, trains))
    except background.BackgroundError as error:
        session.note(AREA, "error", f"Not started: {error}")
        return False
    if run is None:
        session.note(AREA, "error", "Not started: a search is already running in this workspace")
        return False
    st.session_state.search_run_view = run_id
    return True


@session.callback(AREA)
def resume(run_id: str) -> None:
    if live_run() is not None:
        session.note(AREA, "error", "Not resumed: a search is already running in this workspace")
        return
    if run_id not in workspace_run_ids():
        session.note(AREA, "error", f"Not resumed: run {run_id!r:.80} is not one of this workspace's")
        return
    launch(search_store(), run_id)


@session.callback(AREA)
def _cancel() -> None:
    run = workspace_runs(KIND).current()
    if run is not None:
        run.job.cancel()


@st.fragment(run_every=0.5)
def progress_line() -> None:
    """Polls the running search twice a second without rerunning the page; reruns it once the search has ended."""
    run = workspace_runs(KIND).current()
    if run is None or run.job.done():
        st.rerun()
    done, budget = run.job.progress()
    queued = run.job.queue_text()  # waiting for a slot of the server's background pool
    st.progress(min(1.0, done / max(1, budget)), text=escape_md(
        f"run {run.run_id}: {queued}" if queued else
        f"run {run.run_id}: {done} of {budget} candidates evaluated · {time.time() - run.started:.0f} s"))
    st.button("Cancel search", key="search_cancel", on_click=_cancel, icon=":material/stop_circle:")
