"""Background runs (a latency measurement, a sweep) that belong to a workspace, not to a browser session: kept on
the server by workspace id (the `ws` address parameter), so a refresh of the same address follows its run while
another workspace never sees it."""
from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

import streamlit as st

from spinescope.app import session
from spinescope.app.background import register_busy

Run = TypeVar("Run")


class WorkspaceRuns(Generic[Run]):
    """The runs of one kind going on this server, at most one per workspace."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()
        register_busy(self.workspaces)

    def workspaces(self) -> set[str]:
        """Returns the ids of the workspaces with a run here (going, or finished and not yet collected)."""
        with self._lock:
            return set(self._runs)

    def current(self) -> Run | None:
        """Returns this workspace's run (going, or finished and not yet collected), or None."""
        with self._lock:
            return self._runs.get(session.workspace_id())

    def start(self, make: Callable[[], Run]) -> Run | None:
        """Makes and registers this workspace's run with `make()` (which starts it), unless one is already there:
        then returns None and makes nothing."""
        with self._lock:
            if session.workspace_id() in self._runs:
                return None
            run = self._runs[session.workspace_id()] = make()
            return run

    def take(self, run: Run, workspace_id: str | None = None) -> bool:
        """Takes `run` off the registry of `workspace_id` (default: this session's workspace); True for the one
        caller that does (the server's watcher, or whichever page of the workspace sees it finished first), False
        for the others."""
        workspace_id = workspace_id or session.workspace_id()
        with self._lock:
            if self._runs.get(workspace_id) is not run:
                return False
            del self._runs[workspace_id]
            return True


@st.cache_resource(show_spinner=False)
def workspace_runs(kind: str) -> WorkspaceRuns:
    """Returns the registry of the runs of `kind` ('latency', 'sweep') on this server."""
    return WorkspaceRuns()
