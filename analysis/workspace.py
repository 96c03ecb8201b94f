"""The app's workspace in one SQLite file: each browser session's working spec and edit history, and named designs.

A workspace is identified by a random id (the app keeps it in the page URL, so a refresh finds it again). Every
accepted edit is written, and committed, before the app shows it, so a killed server loses nothing. Workspaces
are private to their id; designs are shared by name. Many processes and threads may use the file at once: each
call opens its own connection, writes run in `BEGIN IMMEDIATE` transactions and the journal is WAL.
"""
from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from spinenet.edits import EditHistory, HistoryEntry
from spinenet.spec import Spec, spec_hash, spec_to_dict
from spinenet.validate import LIMITS, SpecError, parse_spec

WORKSPACE_FILE = "workspace.sqlite"
WORKSPACE_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_HISTORY = 1000  # entries kept per workspace; older ones are dropped, the newest and the cursor are kept
KINDS = ("load", "edit")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    cursor INTEGER NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    settings TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS history (
    workspace TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    spec TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (workspace, position)
);
CREATE TABLE IF NOT EXISTS designs (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    saved REAL NOT NULL
);
"""


class WorkspaceError(Exception):
    """A workspace or design request that cannot be met; the message is one line for the user."""


@dataclass(frozen=True)
class DesignInfo:
    """A saved design as listed: its name, the spec's own name, content hash and save time (Unix seconds)."""

    name: str
    spec_name: str
    spec_hash: str
    saved: float


@dataclass(frozen=True)
class WorkspaceInfo:
    """A workspace as listed: id, current spec name, number of history entries, last change (Unix seconds)."""

    id: str
    spec_name: str
    entries: int
    updated: float


def new_workspace_id() -> str:
    """Returns a fresh random workspace id (32 hex digits)."""
    return secrets.token_hex(16)


def is_workspace_id(text) -> bool:
    """Returns True if `text` has the form of a workspace id."""
    return isinstance(text, str) and bool(WORKSPACE_ID.match(text))


def _spec_text(spec: Spec) -> str:
    return json.dumps(spec_to_dict(spec), separators=(",", ":"))


def _spec_from_text(text: str) -> Spec:
    return parse_spec(json.loads(text))


def _design_name(name) -> str:
    name = str(name).strip() if name is not None else ""
    if not name:
        raise WorkspaceError("a design needs a name")
    if len(name) > LIMITS["max_name_length"]:
        raise WorkspaceError(f"design name is longer than {LIMITS['max_name_length']} characters")
    if any(ord(char) < 32 for char in name):
        raise WorkspaceError("design name contains control characters")
    return name


class WorkspaceStore:
    """Workspaces and designs in the SQLite file at `path` (created with its folder on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as connection:
            connection.executescript(_SCHEMA)

    @contextmanager
    def _connection(self):
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _write(self):
        with self._connection() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # Workspaces -------------------------------------------------------------------------------------------------

    def create(self, spec: Spec, description: str, workspace_id: str | None = None) -> str:
        """Creates a workspace whose history starts with `spec` (a 'load' entry); returns its id."""
        workspace_id = workspace_id or new_workspace_id()
        if not is_workspace_id(workspace_id):
            raise WorkspaceError("a workspace id is 32 hexadecimal digits")
        now = time.time()
        with self._write() as connection:
            if connection.execute("SELECT 1 FROM workspaces WHERE id = ?", (workspace_id,)).fetchone():
                raise WorkspaceError(f"workspace {workspace_id} already exists")
            connection.execute("INSERT INTO workspaces (id, created, updated, cursor) VALUES (?, ?, ?, 0)",
                               (workspace_id, now, now))
            connection.execute("INSERT INTO history VALUES (?, 0, 'load', ?, ?, ?)",
                               (workspace_id, description, _spec_text(spec), now))
        return workspace_id

    def exists(self, workspace_id: str) -> bool:
        """Returns True if a workspace with this id is stored."""
        if not is_workspace_id(workspace_id):
            return False
        with self._connection() as connection:
            return connection.execute("SELECT 1 FROM workspaces WHERE id = ?", (workspace_id,)).fetchone() is not None

    def revision(self, workspace_id: str) -> int | None:
        """Returns the workspace's change counter (bumped by every write), or None if there is no such workspace."""
        with self._connection() as connection:
            row = connection.execute("SELECT revision FROM workspaces WHERE id = ?", (workspace_id,)).fetchone()
        return None if row is None else row[0]

    def load(self, workspace_id: str) -> EditHistory:
        """Returns the workspace's EditHistory (cursor on the current spec). Raises WorkspaceError if it does not
        exist or its stored specs no longer validate."""
        with self._connection() as connection:
            row = connection.execute("SELECT cursor FROM workspaces WHERE id = ?", (workspace_id,)).fetchone()
            if row is None:
                raise WorkspaceError(f"no workspace {workspace_id}")
            rows = connection.execute("SELECT position, kind, description, spec FROM history WHERE workspace = ? "
                                      "ORDER BY position", (workspace_id,)).fetchall()
        positions = [position for position, *_ in rows]
        if row[0] not in positions:
            raise WorkspaceError(f"workspace {workspace_id} is damaged: its current entry is missing")
        entries = []
        for position, kind, description, text in rows:
            try:
                entries.append(HistoryEntry(_spec_from_text(text), description, kind))
            except (SpecError, ValueError) as error:
                raise WorkspaceError(f"workspace {workspace_id} entry {position} is not a valid spec: "
                                     f"{str(error).splitlines()[0]}") from None
        return EditHistory(entries, positions.index(row[0]))

    def push(self, workspace_id: str, spec: Spec, description: str, kind: str = "edit") -> int:
        """Appends an accepted spec after the cursor (dropping entries that could be redone) and commits.
        Returns the workspace's new revision."""
        if kind not in KINDS:
            raise ValueError(f"unknown history kind {kind!r}")
        now = time.time()
        with self._write() as connection:
            cursor = self._cursor(connection, workspace_id)
            connection.execute("DELETE FROM history WHERE workspace = ? AND position > ?", (workspace_id, cursor))
            connection.execute("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?)",
                               (workspace_id, cursor + 1, kind, description, _spec_text(spec), now))
            connection.execute("DELETE FROM history WHERE workspace = ? AND position <= ?",
                               (workspace_id, cursor + 1 - MAX_HISTORY))
            return self._touch(connection, workspace_id, cursor + 1, now)

    def move_cursor(self, workspace_id: str, steps: int) -> int:
        """Moves the cursor `steps` entries (-1: undo, +1: redo) and commits; returns the new revision.
        Raises WorkspaceError when there is no entry there."""
        with self._write() as connection:
            cursor = self._cursor(connection, workspace_id)
            positions = [row[0] for row in connection.execute(
                "SELECT position FROM history WHERE workspace = ? ORDER BY position", (workspace_id,))]
            index = positions.index(cursor) + steps
            if not 0 <= index < len(positions):
                raise WorkspaceError("nothing to undo" if steps < 0 else "nothing to redo")
            return self._touch(connection, workspace_id, positions[index], time.time())

    def settings(self, workspace_id: str) -> dict:
        """Returns the workspace's view settings (a JSON object; {} when none or no such workspace)."""
        with self._connection() as connection:
            row = connection.execute("SELECT settings FROM workspaces WHERE id = ?", (workspace_id,)).fetchone()
        try:
            value = json.loads(row[0]) if row else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def save_settings(self, workspace_id: str, settings: dict) -> None:
        """Stores the workspace's view settings (JSON-ready values only); does not bump the revision."""
        with self._write() as connection:
            connection.execute("UPDATE workspaces SET settings = ? WHERE id = ?",
                               (json.dumps(settings, sort_keys=True), workspace_id))

    def recent(self, limit: int = 10) -> list[WorkspaceInfo]:
        """Returns the most recently changed workspaces, newest first."""
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT w.id, h.spec, (SELECT COUNT(*) FROM history WHERE workspace = w.id), w.updated "
                "FROM workspaces w JOIN history h ON h.workspace = w.id AND h.position = w.cursor "
                "ORDER BY w.updated DESC LIMIT ?", (limit,)).fetchall()
        return [WorkspaceInfo(workspace_id, _stored_name(text), count, updated)
                for workspace_id, text, count, updated in rows]

    @staticmethod
    def _cursor(connection, workspace_id: str) -> int:
        row = connection.execute("SELECT cursor FROM workspaces WHERE id = ?", (workspace_id,)).fetchone()
        if row is None:
            raise WorkspaceError(f"no workspace {workspace_id}")
        return row[0]

    @staticmethod
    def _touch(connection, workspace_id: str, cursor: int, now: float) -> int:
        connection.execute("UPDATE workspaces SET cursor = ?, updated = ?, revision = revision + 1 WHERE id = ?",
                           (cursor, now, workspace_id))
        return connection.execute("SELECT revision FROM workspaces WHERE id = ?", (workspace_id,)).fetchone()[0]

    # Designs ----------------------------------------------------------------------------------------------------

    def save_design(self, name: str, spec: Spec) -> bool:
        """Saves `spec` as design `name` (trimmed, 1-100 characters); returns True if it replaced one."""
        name = _design_name(name)
        with self._write() as connection:
            replaced = connection.execute("SELECT 1 FROM designs WHERE name = ?", (name,)).fetchone() is not None
            connection.execute("INSERT OR REPLACE INTO designs VALUES (?, ?, ?, ?)",
                               (name, _spec_text(spec), spec_hash(spec), time.time()))
        return replaced

    def load_design(self, name: str) -> Spec:
        """Returns the spec saved as `name`; raises WorkspaceError if there is none or it no longer validates."""
        with self._connection() as connection:
            row = connection.execute("SELECT spec FROM designs WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise WorkspaceError(f"no saved design named {name!r}")
        try:
            return _spec_from_text(row[0])
        except (SpecError, ValueError) as error:
            raise WorkspaceError(f"design {name!r} is not a valid spec: {str(error).splitlines()[0]}") from None

    def designs(self) -> list[DesignInfo]:
        """Returns the saved designs, most recently saved first."""
        with self._connection() as connection:
            rows = connection.execute("SELECT name, spec, spec_hash, saved FROM designs ORDER BY saved DESC").fetchall()
        return [DesignInfo(name, _stored_name(text), digest, saved) for name, text, digest, saved in rows]

    def delete_design(self, name: str) -> None:
        """Deletes design `name`; raises WorkspaceError if there is none."""
        with self._write() as connection:
            if connection.execute("DELETE FROM designs WHERE name = ?", (name,)).rowcount == 0:
                raise WorkspaceError(f"no saved design named {name!r}")


def _stored_name(text: str) -> str:
    try:
        return str(json.loads(text).get("name", "?"))
    except (ValueError, AttributeError):
        return "?"


def default_store() -> WorkspaceStore:
    """Returns the store in SpineScope's data directory (`$SPINESCOPE_HOME` or the per-user data folder)."""
    from analysis.paths import data_dir

    return WorkspaceStore(Path(data_dir()) / WORKSPACE_FILE)
