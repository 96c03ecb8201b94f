"""What one edit and one undo cost the app's session as its workspace history grows: at 1 and at 1,000 entries.

Each edit and undo runs as the app runs it, in a real Streamlit script run (AppTest) on a real SQLite workspace in a
temporary SPINESCOPE_HOME: the widget callback (`session.apply_edit` with `set_level`, or `session.step(-1)`), then
the rerun's `session.start()` (the revision check, and whatever reading of the history it does). The time is taken
inside the script, around those calls only, so Streamlit's own script run is not in it. The two workspaces (one
with 1 entry, one filled to the 1,000-entry limit through `WorkspaceStore.push`) are measured in alternating rounds,
so that a loaded machine slows both alike. Prints medians and worst of each and the ratio of the medians
(1,000 entries / 1 entry); nothing is asserted.

Then the whole page: the real app script (app/main.py) in AppTest on the same two workspaces, Edit tab open with b7
selected; an edit is the "Level" select set to another level, an undo the sidebar's "Undo" click, each timed around
the whole script run (server side, without a browser's drawing).

Usage: .venv/bin/python benchmarks/bench_edit_history.py [--rounds 15] [--page-rounds 8]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from streamlit.logger import set_log_level  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from spinescope.app.workspace import MAX_HISTORY, WORKSPACE_FILE, WorkspaceStore  # noqa: E402
from spinescope.spinenet.builtins import load_builtin  # noqa: E402
from spinescope.spinenet.edits import set_level  # noqa: E402

LENGTHS = (1, MAX_HISTORY)
APP = ROOT / "app" / "main.py"
set_log_level("error")  # AppTest's reads of session state outside a script run warn on every read


def session_script() -> None:
    """The app's session calls for one action (AppTest runs this function's body as the page script)."""
    import time

    import streamlit as st

    from spinescope.app import session
    from spinescope.spinenet.edits import set_level

    action = st.session_state.pop("bench_action", None)
    started = time.perf_counter()
    if action == "edit":
        level = 5 if session.current().block("b7").level == 4 else 4
        session.apply_edit("edit", set_level, "b7", level, description=f"b7 level {level}",
                           rendered=session.revision())
    elif action == "undo":
        session.step("global", -1, rendered=session.revision())
    session.start()
    st.session_state.bench_seconds = time.perf_counter() - started


def filled_workspace(store: WorkspaceStore, entries: int) -> str:
    """Returns the id of a new workspace holding `entries` history entries (b7's level alternating 4 and 5)."""
    spec = load_builtin("spinenet-49")
    workspace = store.create(spec, "open built-in spinenet-49")
    for number in range(1, entries):
        spec = set_level(spec, "b7", 5 if number % 2 else 4)
        store.push(workspace, spec, f"b7 level {spec.block('b7').level}")
    return workspace


def timed(app: AppTest, action: str) -> float:
    """Runs one action in `app` and returns the seconds its session calls took."""
    app.session_state["bench_action"] = action
    app.run()
    if app.exception:
        raise RuntimeError([item.value for item in app.exception])
    if app.session_state["history"].current is None:
        raise RuntimeError("no current spec")
    return app.session_state["bench_seconds"]


def widget(widgets, label: str):
    """Returns the one widget in `widgets` with this label."""
    found = [item for item in widgets if item.label == label]
    if len(found) != 1:
        raise RuntimeError(f"{len(found)} widgets labelled {label!r}")
    return found[0]


def page_for(workspace: str) -> AppTest:
    """Returns the app's page on `workspace`, Edit tab open and block b7 selected."""
    app = AppTest.from_file(str(APP), default_timeout=120)
    app.query_params["ws"] = workspace
    app.run()
    app.session_state["tab"] = "Edit"
    app.run()
    widget(app.selectbox, "Block to edit").set_value("b7")
    app.run()
    return app


def timed_page(app: AppTest, action: str) -> float:
    """Runs one edit or undo through the page's widgets; returns the seconds of the script run."""
    if action == "edit":
        level = 5 if app.session_state["history"].current.block("b7").level == 4 else 4
        widget(app.selectbox, "Level").set_value(level)
    else:
        widget(app.button, "Undo").click()
    started = time.perf_counter()
    app.run()
    seconds = time.perf_counter() - started
    if app.exception:
        raise RuntimeError([item.value for item in app.exception])
    return seconds


def report(title: str, times: dict, held: dict, unit: float, unit_name: str) -> None:
    """Prints medians and worst per history length and action, then the ratios of the medians."""
    print(title)
    for (length, action), seconds in times.items():
        print(f"{length:>5} entr{'y' if length == 1 else 'ies'} ({held[length]:>4} held): {action}  median "
              f"{unit * statistics.median(seconds):8.2f} {unit_name}   worst {unit * max(seconds):8.2f} {unit_name}"
              f"   (n={len(seconds)})")
    for action in ("edit", "undo"):
        ratio = statistics.median(times[LENGTHS[1], action]) / statistics.median(times[LENGTHS[0], action])
        print(f"median ratio {action} ({LENGTHS[1]} entries / 1 entry): {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--page-rounds", type=int, default=8)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-edit-history-"))
    os.environ["SPINESCOPE_HOME"] = str(home)
    store = WorkspaceStore(home / WORKSPACE_FILE)
    workspaces = {length: filled_workspace(store, length) for length in LENGTHS}
    apps = {}
    for length, workspace in workspaces.items():
        app = AppTest.from_function(session_script, default_timeout=120)
        app.query_params["ws"] = workspace
        app.run()
        apps[length] = app
    times = {(length, action): [] for length in LENGTHS for action in ("edit", "undo")}
    for _ in range(args.rounds):
        for length, app in apps.items():
            for action in ("edit", "undo"):
                times[length, action].append(timed(app, action))
    held = {length: len(app.session_state["history"].entries) for length, app in apps.items()}
    report(f"{args.rounds} rounds, the two workspaces alternating; session calls of one action, as the app runs them",
           times, held, 1000, "ms")
    pages = {length: page_for(workspace) for length, workspace in workspaces.items()}
    set_log_level("error")  # the app's script set Streamlit's log level from its config
    times = {(length, action): [] for length in LENGTHS for action in ("edit", "undo")}
    for _ in range(args.page_rounds):
        for length, app in pages.items():
            for action in ("edit", "undo"):
                times[length, action].append(timed_page(app, action))
    held = {length: len(app.session_state["history"].entries) for length, app in pages.items()}
    report(f"{args.page_rounds} rounds, alternating; the whole page's script run (app/main.py, Edit tab)", times,
           held, 1000, "ms")


if __name__ == "__main__":
    main()
