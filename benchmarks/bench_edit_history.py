"""What one edit and one undo cost the app's session as its workspace history grows: at 1 and at 1,000 entries.

Each edit and undo runs as the app runs it, in a real Streamlit script run (AppTest) on a real SQLite workspace in a
temporary SPINESCOPE_HOME: the widget callback (`session.apply_edit` with `set_level`, or `session.step(-1)`), then
the rerun's `session.start()` (the revision check, and whatever reading of the history it does). The time is taken
inside the script, around those calls only, so Streamlit's own script run is not in it. The two workspaces (one
with 1 entry, one filled to the 1,000-entry limit through `WorkspaceStore.push`) are measured in alternating rounds,
so that a loaded machine slows both alike. Prints medians and worst of each and the ratio of the medians
(1,000 entries / 1 entry); nothing is asserted.

Usage: .venv/bin/python benchmarks/bench_edit_history.py [--rounds 15]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from streamlit.logger import set_log_level  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from spinescope.app.workspace import MAX_HISTORY, WORKSPACE_FILE, WorkspaceStore  # noqa: E402
from spinescope.spinenet.builtins import load_builtin  # noqa: E402
from spinescope.spinenet.edits import set_level  # noqa: E402

LENGTHS = (1, MAX_HISTORY)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-edit-history-"))
    os.environ["SPINESCOPE_HOME"] = str(home)
    store = WorkspaceStore(home / WORKSPACE_FILE)
    apps = {}
    for length in LENGTHS:
        app = AppTest.from_function(session_script, default_timeout=120)
        app.query_params["ws"] = filled_workspace(store, length)
        app.run()
        apps[length] = app
    times = {(length, action): [] for length in LENGTHS for action in ("edit", "undo")}
    for _ in range(args.rounds):
        for length, app in apps.items():
            for action in ("edit", "undo"):
                times[length, action].append(timed(app, action))
    print(f"{args.rounds} rounds, the two workspaces alternating; session calls of one action, as the app runs them")
    for (length, action), seconds in times.items():
        entries = len(apps[length].session_state["history"].entries)
        print(f"{length:>5} entr{'y' if length == 1 else 'ies'} ({entries:>4} held): {action}  median "
              f"{1000 * statistics.median(seconds):8.2f} ms   worst {1000 * max(seconds):8.2f} ms   (n={len(seconds)})")
    for action in ("edit", "undo"):
        ratio = statistics.median(times[LENGTHS[1], action]) / statistics.median(times[LENGTHS[0], action])
        print(f"median ratio {action} ({LENGTHS[1]} entries / 1 entry): {ratio:.2f}")


if __name__ == "__main__":
    main()
