"""This browser session's workspace: which one it is (the `ws` URL parameter), its history, and every change to it.

The SQLite workspace (`app.workspace`) is the source of truth: each accepted edit, undo, redo or load is
committed there before the page shows it, so a refresh, a second tab or a restarted server finds the same state.
Widgets call the functions here from their callbacks; a rejected edit leaves the spec as it was and records a
one-line message for the area that asked.
"""
from __future__ import annotations

import functools
import re
import time
from pathlib import Path

import streamlit as st

from spinescope.analysis.paths import DataDirError, data_dir
from spinescope.app import browser_cookie
from spinescope.app.guard import LOG, one_line
from spinescope.app.identity import display_name
from spinescope.app.markup import escape_md
from spinescope.app.spec_merge import MergeConflict, merge_specs
from spinescope.app.workspace import (DEFAULT_MAX_WORKSPACE_MIB, DEFAULT_MAX_WORKSPACES, WORKSPACE_FILE,
                                     StaleRevision, StorageRecovered, TrackedHistory, WorkspaceError,
                                     WorkspaceStore, is_workspace_id, new_workspace_id, workspace_limits)
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import EditHistory
from spinescope.spinenet.input_size import InputSize, normalize, size_text
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.validate import SpecError

DEFAULT_BUILTIN = "spinenet-49"
NODE_ID = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")  # block, stem and output node ids are ASCII (spinenet.validate)
QUERY_KEY = "ws"
# The browser's identity: a random id in a first-party cookie (not readable by other sites, sent only to this
# server). "Recent workspaces" lists the workspaces started with it, so one browser never sees another's. Served
# through app/serve.py the server sets it, HttpOnly (app.browser_cookie); otherwise `remember_browser` sets it from
# a script, which cannot make it HttpOnly. COOKIE_DAYS: the longest lifetime browsers allow.
BROWSER_COOKIE, COOKIE_DAYS = browser_cookie.BROWSER_COOKIE, browser_cookie.COOKIE_DAYS


@st.cache_resource(show_spinner=False)
def _store_for(path: str) -> WorkspaceStore:
    return WorkspaceStore(Path(path))


@st.cache_resource(show_spinner=False)
def _fallback_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="spinescope-")


class BrowserStore:
    """The shared WorkspaceStore as one browser's pages use it: its designs are that browser's own (and the shared
    ones of older files), so no page lists, opens, replaces or deletes another browser's. Everything else is the
    shared store's."""

    def __init__(self, shared: WorkspaceStore, owner: str):
        self._shared, self._owner = shared, owner

    def __getattr__(self, name):
        return getattr(self._shared, name)

    def save_design(self, name: str, spec: Spec) -> bool:
        """Returns True if this browser's design `name` was replaced (see WorkspaceStore.save_design)."""
        return self._shared.save_design(name, spec, self._owner)

    def load_design(self, name: str) -> Spec:
        """Returns this browser's (or the shared) design `name`."""
        return self._shared.load_design(name, self._owner)

    def designs(self) -> list:
        """Returns the DesignInfo of the designs this browser sees, newest first."""
        return self._shared.designs(self._owner)

    def delete_design(self, name: str) -> None:
        """Deletes this browser's design `name` (WorkspaceError if it has none)."""
        self._shared.delete_design(name, self._owner)


def store() -> WorkspaceStore:
    """Returns the workspace store of SpineScope's data directory (one per file, shared by sessions), its designs
    scoped to this browser once the session knows it (`BrowserStore`). When that directory cannot be created or
    written, a temporary folder of this server process stands in, and the page says so (see `start`)."""
    try:
        folder = data_dir()
        st.session_state.pop("storage_problem", None)
    except DataDirError as error:
        folder = Path(_fallback_dir())
        st.session_state.storage_problem = (f"{error}. Until then your work is kept in {folder} and is lost when "
                                            "the server stops.")
    shared = _store_for(str(folder / WORKSPACE_FILE))
    owner = st.session_state.get("browser_id")
    return BrowserStore(shared, owner) if is_workspace_id(owner) else shared


def start() -> None:
    """Binds this session to its workspace (from the URL, else a new one) and loads its history if it changed.
    A workspace file deleted, emptied or damaged while the server runs is replaced (see WorkspaceStore) and this
    session starts a fresh workspace, saying why."""
    try:
        _start()
    except StorageRecovered as error:
        _recover(str(error))
    if st.session_state.get("storage_problem"):
        note("global", "warning", st.session_state.storage_problem)


def _cookie_browser_id() -> str | None:
    """Returns the browser id sent in this session's cookie, or None (no cookie, or not a valid id)."""
    try:
        value = st.context.cookies.get(BROWSER_COOKIE)
    except Exception:  # noqa: BLE001 - no request context (AppTest, bare mode): no cookie
        return None
    return value if is_workspace_id(value) else None


@st.cache_resource(show_spinner=False)
def _open_pages() -> dict:
    """Returns this server's {Streamlit session id: (workspace id, last run, Unix seconds)} (one dict, shared)."""
    return {}


HOLD_SECONDS = 24 * 3600  # without Streamlit's runtime (AppTest), a page that ran this recently holds its workspace


def held_workspaces() -> set[str]:
    """Returns the ids of the workspaces that a page open on this server shows: those of the runtime's active
    sessions, or (without a runtime) of pages that ran in the last HOLD_SECONDS. They are never evicted."""
    pages = _open_pages()
    try:
        from streamlit.runtime import get_instance

        active = {info.session.id for info in get_instance()._session_mgr.list_active_sessions()}
    except Exception:  # noqa: BLE001 - no runtime (AppTest, bare mode): fall back on recent runs
        active = None
    now = time.time()
    for session_id, (_, seen) in list(pages.items()):
        if (session_id not in active) if active is not None else now - seen > HOLD_SECONDS:
            pages.pop(session_id, None)
    return {workspace for workspace, _ in pages.values()}


def _hold(workspace: str) -> None:
    """Records that this session's page shows `workspace` (see `held_workspaces`)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        session_id = get_script_run_ctx().session_id
    except Exception:  # noqa: BLE001 - no script context: nothing to hold
        return
    _open_pages()[session_id] = (workspace, time.time())


def _enforce_limits() -> None:
    """Removes the least recently used workspaces that no open page holds and no background run will write to, down
    to the configured limits; a bad limit is one line on the page and the defaults apply until it is fixed."""
    try:
        limits = workspace_limits()
    except WorkspaceError as error:
        note("global", "error", f"{error}. Using the defaults until then.")
        limits = (DEFAULT_MAX_WORKSPACES, DEFAULT_MAX_WORKSPACE_MIB * 2**20)
    from spinescope.app.background import busy_workspaces

    try:
        removed = store().enforce_limits(held_workspaces() | busy_workspaces() | {workspace_id()}, limits)
    except WorkspaceError as error:
        note("global", "warning", f"Old workspaces could not be removed: {error}")
        return
    if removed:
        LOG.info("removed %d least recently used workspace(s) over the limits", len(removed))


def _known_browser() -> str | None:
    """Returns the browser id this session already holds (server-side state; no client sets it), or None."""
    value = st.session_state.get("browser_id")
    return value if is_workspace_id(value) else None


def _start() -> None:
    workspace_id = st.session_state.get("workspace_id")
    if workspace_id is None:
        requested = st.query_params.get(QUERY_KEY)
        # Only an id this server issued (one in the store) opens a workspace; any other, even well formed (a
        # client-chosen '000...0' shared as a link), gets a fresh random one, so nobody can pick the id another
        # person's work will be saved under.
        issued = is_workspace_id(requested) and store().exists(requested)
        workspace_id = requested if issued else new_workspace_id()
        if requested is not None and not issued:
            shown = ascii(str(requested)[:40]) + ("..." if len(str(requested)) > 40 else "")
            note("global", "warning", f"The workspace in the address ({shown}) is not one this server started, or "
                                      "it was removed; this is a new workspace.")
        # A browser without the cookie gets a fresh random id: never one derived from a workspace id, which is in
        # the address and may be shared (that would let the link's reader list this browser's workspaces).
        # (A session that already knows its browser, e.g. a test standing in for a second tab, keeps it.)
        browser = _cookie_browser_id() or _known_browser() or new_workspace_id()
        if not store().exists(workspace_id):
            try:
                store().create(load_builtin(DEFAULT_BUILTIN), f"open built-in {DEFAULT_BUILTIN}", workspace_id,
                               owner=browser)
            except StorageRecovered:
                raise
            except WorkspaceError:
                if not store().exists(workspace_id):  # not just another tab creating the same one first
                    raise
        # Opening someone's workspace by its address never adopts their browser id (that would list their work).
        st.session_state.browser_id = browser
        st.session_state.workspace_id = workspace_id
        st.session_state.generation = store().generation
        st.session_state.settings = store().settings(workspace_id)
        if issued:
            store().mark_used(workspace_id)
        _hold(workspace_id)  # before the limits: this page holds its workspace
        _enforce_limits()
    else:
        _hold(workspace_id)
    if st.query_params.get(QUERY_KEY) != workspace_id:
        st.query_params[QUERY_KEY] = workspace_id
    try:
        _adopt(store().track(workspace_id, _tracked()))
    except StorageRecovered:
        raise
    except WorkspaceError as error:
        _recover(str(error))


def _recover(problem: str) -> None:
    """Starts a fresh workspace when the stored one cannot be read, telling the user why (and, when the workspace
    file itself was replaced since this session started, what happened to it)."""
    if st.session_state.get("generation", store().generation) != store().generation and store().notice \
            and store().notice not in problem:
        problem = f"{problem} ({store().notice})"
    browser = st.session_state.get("browser_id") or _cookie_browser_id() or new_workspace_id()
    try:
        workspace_id = store().create(load_builtin(DEFAULT_BUILTIN), f"open built-in {DEFAULT_BUILTIN}",
                                      owner=browser)
    except StorageRecovered:  # found the damage only now: the file is fresh, try once more
        workspace_id = store().create(load_builtin(DEFAULT_BUILTIN), f"open built-in {DEFAULT_BUILTIN}",
                                      owner=browser)
    st.session_state.workspace_id = workspace_id
    st.session_state.browser_id = browser
    st.session_state.generation = store().generation
    st.query_params[QUERY_KEY] = workspace_id
    _adopt(store().track(workspace_id))
    st.session_state.settings = store().settings(workspace_id)
    note("global", "warning", f"Started a new workspace: {problem}")


def browser_id() -> str:
    """Returns this browser's id (32 hex digits, random): from its cookie, else the one this session made and sets
    (see `remember_browser`). The workspaces it starts are listed under "Recent workspaces" in this browser only."""
    return st.session_state.browser_id


def remember_browser() -> None:
    """Sets the browser-id cookie when the browser did not send it (first visit), so that its other tabs and
    later visits list the same workspaces. Draws nothing."""
    value = browser_id()
    if _cookie_browser_id() == value or st.session_state.get("_cookie_set") == value:
        return
    if not is_workspace_id(value):  # 32 hex digits, so it needs no escaping in the script below
        return
    st.session_state["_cookie_set"] = value
    st.html(f"<script>document.cookie = '{BROWSER_COOKIE}={value}; path=/; max-age={COOKIE_DAYS * 86400}; "
            "SameSite=Strict';</script>", unsafe_allow_javascript=True)


def history() -> EditHistory:
    return st.session_state.history


def current() -> Spec:
    """Returns the current (last accepted) spec."""
    return history().current


def current_name() -> str:
    """Returns the name the app shows for the current spec (plain text): its own, or 'NAME, edited · HASH' while
    it is an edited spec still carrying the name of the spec its edits started from (`identity.display_name`)."""
    return display_name(current(), history().base)


def workspace_id() -> str:
    return st.session_state.workspace_id


def _tracked() -> TrackedHistory | None:
    """Returns the history this session holds, with the revision it is of (None before the first read)."""
    return st.session_state.get("tracked")


def _adopt(tracked: TrackedHistory) -> None:
    """Makes `tracked` the history this session shows; a new one bumps the change token."""
    if tracked is _tracked() and "history" in st.session_state:
        return
    st.session_state.tracked = tracked
    st.session_state.history = tracked.history
    st.session_state.revision = tracked.revision
    st.session_state.changes = st.session_state.get("changes", 0) + 1


def note(area: str, kind: str, text: str) -> None:
    """Records a message ('error', 'warning', 'success' or 'info') for `area`, shown once by `show_notes`."""
    st.session_state.setdefault("notes", {})[area] = (kind, text)


def show_notes(area: str) -> None:
    """Shows and clears the message recorded for `area`, if any."""
    kind, text = st.session_state.get("notes", {}).pop(area, (None, None))
    if kind:
        getattr(st, kind)(escape_md(text))  # literal text: messages quote file names, ids and values


def callback(area: str):
    """Decorator for widget callbacks (they run before the page, outside `guarded`): an unexpected exception becomes
    a one-line note in `area` and a log entry, never a traceback, and the workspace stays as it was."""
    def wrap(function):
        @functools.wraps(function)
        def safe(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - shown as one line, logged in full
                LOG.exception("error in callback %s", function.__name__)
                note(area, "error", f"Something went wrong: {one_line(error)}")
                return None
        return safe
    return wrap


def change_token() -> int:
    """Returns a number that changes whenever the spec changes or an edit is rejected (widgets resync on it)."""
    return st.session_state.get("changes", 0)


def revision() -> int:
    """Returns the workspace revision this page shows; buttons pass it back as `rendered` (see `is_stale`)."""
    return st.session_state.revision


def is_stale(area: str, rendered: int | None) -> bool:
    """True, with a note, when the workspace changed after a button was drawn (revision `rendered`): the click
    would act on a spec the user did not see. That happens with another tab on the same workspace, a second click
    before the page caught up, or Streamlit replaying a button's click after an interrupted rerun."""
    if rendered is None or store().revision(workspace_id()) == rendered:
        return False
    note(area, "info", "Nothing done: the spec changed after that button was shown. Click it again if you meant it.")
    return True


def apply_edit(area: str, edit, *args, description: str, select: str | None = None, rendered: int | None = None,
               **kwargs) -> bool:
    """Runs `edit(current, *args, **kwargs)`; an accepted result is committed to the workspace, a SpecError is
    shown in `area` as one line and leaves the spec as it was. Returns True if the edit was accepted.
    `rendered`: the revision the clicked button was drawn for (buttons only; see `is_stale`)."""
    if is_stale(area, rendered):
        return False
    try:
        spec = edit(current(), *args, **kwargs)
    except SpecError as error:
        note(area, "error", f"Edit rejected: {error}")
        st.session_state.changes = change_token() + 1
        return False
    if spec == current():
        st.session_state.changes = change_token() + 1
        return True
    return commit(area, spec, description, select=select)


def commit(area: str, spec: Spec, description: str, kind: str = "edit", select: str | None = None) -> bool:
    """Commits an accepted spec to the workspace and makes it current; returns True on success.

    The write happens only if the workspace is still at the revision this page shows. When another tab wrote in
    between, an edit ('edit') is merged on top of its change (`spec_merge`) and says so, or refused with a note
    when both changed the same field; a load ('load': open, import, paste) replaces the spec as asked and says
    that the other tab's change is kept one Undo back. Never does a stale page silently revert another's edit."""
    known, merged = _tracked(), False
    for _ in range(3):  # another writer may come in again between the merge and the write
        try:
            tracked = store().push_tracked(known, spec, description, kind, strict=True)
            break
        except StaleRevision:
            fresh = store().track(workspace_id(), known)
        except WorkspaceError as error:
            note(area, "error", f"Could not save the edit: {error}")
            return False
        if kind == "edit":
            try:
                spec = merge_specs(known.history.current, spec, fresh.history.current)
            except MergeConflict as conflict:
                _adopt(fresh)
                note(area, "warning", f"Not applied ({description}): another tab changed {conflict} in this "
                                      "workspace since this page was drawn; the page now shows that change. Make "
                                      "your edit again if you still want it.")
                return False
        known, merged = fresh, True
    else:
        _adopt(store().track(workspace_id(), known))
        note(area, "warning", f"Not applied ({description}): other tabs keep changing this workspace; try again.")
        return False
    _adopt(tracked)
    if merged:
        note(area, "info", f"Another tab changed this workspace since this page was drawn: your edit "
                           f"({description}) was merged on top of its change." if kind == "edit" else
                           "Another tab changed this workspace since this page was drawn; that change is kept in "
                           "the history, one Undo back.")
    if select is not None:
        select_block(select)
    return True


def select_block(block_id: str | None) -> None:
    """Makes `block_id` the selected block (None: none chosen) and keeps it in the workspace, so that a refresh
    shows the same block selected. A value that cannot be a node id (it comes from the browser: the graph
    component, a selectbox) is refused with a one-line note and never stored."""
    if block_id is not None and not (isinstance(block_id, str) and NODE_ID.match(block_id)):
        shown = ascii(str(block_id)[:40]) + ("..." if len(str(block_id)) > 40 else "")
        note("global", "warning", f"Ignored a selection that is not a block id: {shown} "
                                  f"({len(str(block_id)):,} characters).")
        return
    if block_id is None:
        st.session_state.pop("selection", None)
    else:
        st.session_state["selection"] = block_id
    set_setting("selection", block_id)


def selected_block() -> str | None:
    """Returns the block selected in this session, else the one kept in the workspace (after a refresh)."""
    return st.session_state.get("selection") or setting("selection")


def input_size() -> InputSize:
    """Returns the input size chosen for this workspace: the side (pixels) of a square input, or (height, width)
    when a height other than the width is set; the current spec's own when none is chosen."""
    width = int(st.session_state.get("input_size") or setting("input_size") or current().input_size)
    height = st.session_state.get("input_height", setting("input_height"))
    return normalize((int(height), width)) if height else width


def load_spec(area: str, spec: Spec, description: str, rendered: int | None = None,
              message: str | None = None) -> bool:
    """Makes `spec` the new starting spec (undoable) and resets the input size to its own; says so with `message`
    (default "Opened NAME."), and names the size when that changed it. Returns True when it was loaded."""
    if is_stale(area, rendered) or not commit(area, spec, description, kind="load"):
        return False
    before = input_size()  # the size chosen before this load (the new spec's own when none was)
    resized = (f" The input size is now its own, {size_text(spec.input_size)} (was {size_text(before)})."
               if normalize(before) != normalize(spec.input_size) else "")
    set_setting("input_size", spec.input_size)
    set_setting("input_height", None)
    st.session_state.input_size = spec.input_size
    st.session_state.input_height = None
    kind, merged = st.session_state.get("notes", {}).get(area, (None, ""))  # commit's note on another tab's change
    select_block(None)
    note(area, "success", (message or f"Opened {spec.name}.") + resized + (f" {merged}" if kind == "info" else ""))
    return True


def step(area: str, steps: int, rendered: int | None = None) -> None:
    """Undo (steps=-1) or redo (+1), committed to the workspace."""
    if is_stale(area, rendered):
        return
    try:
        tracked = store().move_cursor_tracked(_tracked(), steps, strict=True)
    except StaleRevision:  # an undo from a stale page would undo another tab's edit instead of this page's
        _adopt(store().track(workspace_id(), _tracked()))
        note(area, "info", f"Nothing {'undone' if steps < 0 else 'redone'}: another tab changed this workspace "
                           "since this page was drawn; the page now shows its state.")
        return
    except WorkspaceError as error:
        note(area, "warning", str(error).capitalize() + ".")
        return
    _adopt(tracked)


def setting(name: str, default=None):
    """Returns a view setting of this workspace (kept across refreshes)."""
    return st.session_state.get("settings", {}).get(name, default)


def set_setting(name: str, value) -> bool:
    """Stores a view setting of this workspace (only this one: another tab's settings stay as stored); returns
    False, with a one-line note, when it is refused (over `workspace.MAX_SETTING_BYTES`, or the file cannot be
    written) and nothing changed."""
    if st.session_state.get("settings", {}).get(name) == value:
        return True
    try:
        st.session_state.settings = store().update_setting(workspace_id(), name, value)
    except WorkspaceError as error:
        note("global", "warning", f"Setting not kept: {error}.")
        return False
    return True


def sync_widgets(group: str, values: dict, extra=None) -> None:
    """Sets the widgets `values` ({key: value}) from the spec whenever it changed (or an edit was rejected, or
    `extra` changed), and whenever a widget's state is missing (it was not on the page in the last run)."""
    token = (change_token(), st.session_state.get("workspace_id"), extra)
    stale = st.session_state.get(f"_synced_{group}") != token
    for key, value in values.items():
        if stale or key not in st.session_state:
            st.session_state[key] = value
    st.session_state[f"_synced_{group}"] = token
