"""The app's workspace in one SQLite file: each browser session's working spec and edit history, and named designs.

A workspace is identified by a random id (the app keeps it in the page URL, so a refresh finds it again). Every
accepted edit is written, and committed, before the app shows it, so a killed server loses nothing. Workspaces
are private to their id; a design belongs to the browser that saved it. Many processes and threads may use the
file at once: each call opens its own connection, writes run in `BEGIN IMMEDIATE` transactions and the journal is
WAL. A write from a page may ask to happen only at the revision the page showed (`strict`, `StaleRevision`).
Settings and the number and size of workspaces are bounded (`MAX_SETTING_BYTES`, `enforce_limits`).

Each history row records the workspace revision that wrote it, so a session that holds the history as of one
revision (`TrackedHistory`) catches up by reading only the rows written since (`track`), and after its own write
(`push_tracked`, `move_cursor_tracked`) reads nothing at all when no other writer came in between.
"""
from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from spinescope.spinenet.edits import EditHistory, HistoryEntry
from spinescope.spinenet.spec import Spec, spec_hash, spec_to_dict
from spinescope.spinenet.validate import LIMITS, SpecError, parse_spec, printable

WORKSPACE_FILE = "workspace.sqlite"
WORKSPACE_ID = re.compile(r"\A[0-9a-f]{32}\Z")  # \Z: `$` would accept a trailing newline
MAX_HISTORY = 1000  # entries kept per workspace; older ones are dropped, the newest and the cursor are kept
KINDS = ("load", "edit")
# Settings are small view choices and the last run's figures: one value over MAX_SETTING_BYTES (as JSON) is refused
# and never stored, and a workspace's settings together stay under MAX_SETTINGS_BYTES.
MAX_SETTING_BYTES = 256 * 1024
MAX_SETTINGS_BYTES = 1024 * 1024
# The file as a whole: at most this many workspaces and this much stored text (specs, descriptions, settings),
# the least recently used ones that no open page holds removed first (`WorkspaceStore.enforce_limits`).
DEFAULT_MAX_WORKSPACES = 500
DEFAULT_MAX_WORKSPACE_MIB = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    cursor INTEGER NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    settings TEXT NOT NULL DEFAULT '{}',
    owner TEXT,
    used REAL
);
CREATE TABLE IF NOT EXISTS history (
    workspace TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    spec TEXT NOT NULL,
    created REAL NOT NULL,
    written INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace, position)
);
CREATE TABLE IF NOT EXISTS designs (
    owner TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    saved REAL NOT NULL,
    PRIMARY KEY (owner, name)
);
"""
# A file written before designs had owners: its designs become shared ones (owner ''), which every browser lists
# and opens and none replaces or deletes (see WorkspaceStore.save_design).
_OWN_DESIGNS = """
ALTER TABLE designs RENAME TO designs_unowned;
CREATE TABLE designs (owner TEXT NOT NULL DEFAULT '', name TEXT NOT NULL, spec TEXT NOT NULL,
                      spec_hash TEXT NOT NULL, saved REAL NOT NULL, PRIMARY KEY (owner, name));
INSERT INTO designs (owner, name, spec, spec_hash, saved) SELECT '', name, spec, spec_hash, saved FROM designs_unowned;
DROP TABLE designs_unowned;
"""


@dataclass(frozen=True)
class TrackedHistory:
    """A workspace's EditHistory as of one revision: the store position of each entry (same order), the revision
    and the workspace's creation time (Unix seconds; a workspace made again under the same id is read in full)."""

    workspace_id: str
    history: EditHistory
    positions: tuple[int, ...]
    revision: int
    created: float

    def pushed(self, spec: Spec, description: str, kind: str, revision: int) -> "TrackedHistory":
        """Returns the history after the store's `push` of `spec` at `revision` (entries after the cursor dropped,
        the oldest beyond MAX_HISTORY forgotten), built in memory."""
        history = EditHistory(list(self.history.entries), self.history.cursor)
        position = self.positions[history.cursor] + 1
        history.push(spec, description, kind)
        positions = self.positions[:history.cursor] + (position,)
        dropped = sum(1 for kept in positions if kept <= position - MAX_HISTORY)
        history.drop_oldest(dropped)
        return replace(self, history=history, positions=positions[dropped:], revision=revision)

    def moved(self, steps: int, revision: int) -> "TrackedHistory":
        """Returns the history with its cursor moved `steps` entries, at `revision`, built in memory."""
        return replace(self, history=EditHistory(list(self.history.entries), self.history.cursor + steps),
                       revision=revision)


class WorkspaceError(Exception):
    """A workspace or design request that cannot be met; the message is one line for the user."""


class StaleRevision(WorkspaceError):
    """The workspace changed since the revision a write was based on (another tab, another writer); nothing was
    written. `revision`: the workspace's revision now."""

    def __init__(self, workspace_id: str, revision: int):
        super().__init__(f"workspace {workspace_id} changed since this page was drawn (now revision {revision})")
        self.revision = revision


class StorageRecovered(WorkspaceError):
    """The workspace file was missing, emptied or damaged and has been replaced by a fresh one (a damaged file is
    kept beside it); the request that found it was not carried out. The message says what happened, once."""


@dataclass(frozen=True)
class DesignInfo:
    """A saved design as listed: its name, the spec's own name, content hash and save time (Unix seconds)."""

    name: str
    spec_name: str
    spec_hash: str
    saved: float


@dataclass(frozen=True)
class WorkspaceInfo:
    """A workspace as listed: id, current spec name, number of history entries, last change (Unix seconds), and
    the description and kind ('load' or 'edit') of its current entry."""

    id: str
    spec_name: str
    entries: int
    updated: float
    last: str = ""
    kind: str = "load"


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
    if not name.isprintable():
        raise WorkspaceError(f"design name {ascii(name)} contains a character that cannot be printed")
    return name


def _count_env(name: str, default: int) -> int:
    """Returns the positive whole number in environment variable `name`, or `default` when it is unset or empty;
    raises WorkspaceError, one line naming the value, for anything else."""
    import os

    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()) or int(stripped) <= 0 or len(stripped) > 12:
        raise WorkspaceError(f"{name}={ascii(text)} must be a positive whole number of ASCII digits 0-9 (at most "
                             f"12), e.g. {name}={default}; unset it for the default ({default})")
    return int(stripped)


def workspace_limits() -> tuple[int, int]:
    """Returns the most workspaces the file keeps and the most bytes of stored text they hold together
    (SPINESCOPE_MAX_WORKSPACES, default 500; SPINESCOPE_MAX_WORKSPACE_MIB, default 256). Raises WorkspaceError
    with one line for a value that is not a positive whole number."""
    return (_count_env("SPINESCOPE_MAX_WORKSPACES", DEFAULT_MAX_WORKSPACES),
            _count_env("SPINESCOPE_MAX_WORKSPACE_MIB", DEFAULT_MAX_WORKSPACE_MIB) * 2**20)


def _setting_text(name: str, value) -> str:
    """Returns `value` as JSON; raises WorkspaceError when it is over MAX_SETTING_BYTES (or not JSON-ready)."""
    try:
        text = json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        raise WorkspaceError(f"the setting {ascii(str(name)[:40])} is not a plain value; not kept") from None
    if len(text) > MAX_SETTING_BYTES:
        raise WorkspaceError(f"the setting {ascii(str(name)[:40])} is {len(text):,} bytes, over the limit of "
                             f"{MAX_SETTING_BYTES:,}; not kept")
    return text


class WorkspaceStore:
    """Workspaces and designs in the SQLite file at `path` (created with its folder on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.generation = 0  # bumped by every recovery, so that each session can tell whether its data went
        self.notice: str | None = None  # what the last recovery did, one line
        try:
            self._create_schema()
        except sqlite3.DatabaseError as error:
            raise (self._repair(error) or error) from None

    def _create_schema(self) -> None:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)
            columns = {row[1] for row in connection.execute("PRAGMA table_info(workspaces)")}
            if "owner" not in columns:  # a file written before workspaces had owners
                connection.execute("ALTER TABLE workspaces ADD COLUMN owner TEXT")
            if "used" not in columns:  # ... or a last-use time (read as its last change)
                connection.execute("ALTER TABLE workspaces ADD COLUMN used REAL")
            if "written" not in {row[1] for row in connection.execute("PRAGMA table_info(history)")}:
                connection.execute("ALTER TABLE history ADD COLUMN written INTEGER NOT NULL DEFAULT 0")
            if "owner" not in {row[1] for row in connection.execute("PRAGMA table_info(designs)")}:
                connection.execute("BEGIN IMMEDIATE")
                if "owner" not in {row[1] for row in connection.execute("PRAGMA table_info(designs)")}:
                    for statement in _OWN_DESIGNS.split(";"):
                        if statement.strip():
                            connection.execute(statement)
                connection.execute("COMMIT")
        finally:
            connection.close()

    def _shown(self) -> str:
        return ascii(str(self.path))[1:-1]

    def _recovered(self, what: str) -> StorageRecovered:
        self.generation += 1
        self.notice = what
        return StorageRecovered(what)

    def _check_file(self) -> None:
        """Recreates the file with its tables when it was deleted or emptied while the app ran."""
        try:
            # Empty with no write-ahead log: in WAL mode a new file may be empty while its tables are in the log.
            missing = self.path.stat().st_size == 0 and not _nonempty(Path(f"{self.path}-wal"))
        except FileNotFoundError:
            missing = True
        if missing:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._create_schema()
            raise self._recovered(f"the workspace file {self._shown()} was deleted or emptied; a fresh one was "
                                  "created (workspaces and designs stored in it are gone)")

    def _repair(self, error: sqlite3.DatabaseError) -> WorkspaceError | None:
        """Returns the error to raise for a database error: tables recreated, or a damaged file moved aside and a
        fresh one started; a read-only or unopenable file is named with the fix; None for other errors (busy ...)."""
        text = str(error)
        if "no such table" in text:
            self._create_schema()
            return self._recovered(f"the workspace file {self._shown()} had lost its tables; they were recreated")
        if "not a database" in text or "malformed" in text:
            kept = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            for suffix in ("", "-wal", "-shm"):
                source = Path(str(self.path) + suffix)
                if source.exists():
                    source.replace(Path(str(kept) + suffix))
            self._create_schema()
            return self._recovered(f"the workspace file {self._shown()} was damaged ({text}); it was moved to "
                                   f"{ascii(str(kept))[1:-1]} and a fresh one was started")
        if "disk is full" in text:
            return WorkspaceError(f"the workspace file {self._shown()} cannot grow: the disk holding it is full; "
                                  "free space there, or set SPINESCOPE_HOME to a folder on another disk")
        if "readonly" in text or "unable to open" in text or "disk I/O" in text:
            return WorkspaceError(f"the workspace file {self._shown()} cannot be used ({text}); make it and its "
                                  "folder writable, or set SPINESCOPE_HOME to a writable directory")
        return None

    @contextmanager
    def _connection(self):
        self._check_file()
        try:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.DatabaseError as error:
            raise (self._repair(error) or error) from None
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            yield connection
        except sqlite3.DatabaseError as error:
            connection.close()
            repaired = self._repair(error)
            if repaired is None:
                raise
            raise repaired from None
        finally:
            connection.close()

    @contextmanager
    def _write(self):
        with self._connection() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # Workspaces -------------------------------------------------------------------------------------------------

    def create(self, spec: Spec, description: str, workspace_id: str | None = None, owner: str | None = None) -> str:
        """Creates a workspace whose history starts with `spec` (a 'load' entry); returns its id. `owner`: the id
        of the browser that starts it (see `app.session.browser_id`), so that `recent` lists one browser's
        workspaces only; a workspace without one owns itself."""
        workspace_id = workspace_id or new_workspace_id()
        if not is_workspace_id(workspace_id):
            raise WorkspaceError("a workspace id is 32 hexadecimal digits")
        if owner is not None and not is_workspace_id(owner):
            raise WorkspaceError("a browser id is 32 hexadecimal digits")
        now = time.time()
        with self._write() as connection:
            if connection.execute("SELECT 1 FROM workspaces WHERE id = ?", (workspace_id,)).fetchone():
                raise WorkspaceError(f"workspace {workspace_id} already exists")
            connection.execute("INSERT INTO workspaces (id, created, updated, cursor, owner, used) "
                               "VALUES (?, ?, ?, 0, ?, ?)", (workspace_id, now, now, owner or workspace_id, now))
            connection.execute("INSERT INTO history (workspace, position, kind, description, spec, created) "
                               "VALUES (?, 0, 'load', ?, ?, ?)", (workspace_id, description, _spec_text(spec), now))
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
        return self.track(workspace_id).history

    def track(self, workspace_id: str, known: TrackedHistory | None = None) -> TrackedHistory:
        """Returns the workspace's history as stored now. Given `known` (an earlier result for the same workspace),
        only the entries written after its revision are read and validated, and `known` itself comes back when
        nothing changed. Raises WorkspaceError if the workspace does not exist or a stored spec read no longer
        validates."""
        with self._connection() as connection:
            connection.execute("BEGIN")  # one snapshot for the reads below
            row = connection.execute("SELECT created, revision, cursor FROM workspaces WHERE id = ?",
                                     (workspace_id,)).fetchone()
            if row is None:
                raise WorkspaceError(f"no workspace {workspace_id}")
            created, revision, cursor = row
            same = (known is not None and known.workspace_id == workspace_id and known.created == created
                    and known.revision <= revision)
            if same and known.revision == revision:
                return known
            since = known.revision if same else -1
            positions = tuple(position for (position,) in connection.execute(
                "SELECT position FROM history WHERE workspace = ? ORDER BY position", (workspace_id,)))
            rows = connection.execute("SELECT position, kind, description, spec FROM history WHERE workspace = ? "
                                      "AND written > ? ORDER BY position", (workspace_id, since)).fetchall()
        if cursor not in positions:
            raise WorkspaceError(f"workspace {workspace_id} is damaged: its current entry is missing")
        entries = dict(zip(known.positions, known.history.entries)) if same else {}
        for position, kind, description, text in rows:
            try:
                entries[position] = HistoryEntry(_spec_from_text(text), description, kind)
            except (SpecError, ValueError) as error:
                raise WorkspaceError(f"workspace {workspace_id} history entry {positions.index(position) + 1} is "
                                     f"not a valid spec: {str(error).splitlines()[0]}") from None
        if any(position not in entries for position in positions):  # written outside this store: read all
            return self.track(workspace_id)
        history = EditHistory([entries[position] for position in positions], positions.index(cursor))
        return TrackedHistory(workspace_id, history, positions, revision, created)

    def push(self, workspace_id: str, spec: Spec, description: str, kind: str = "edit") -> int:
        """Appends an accepted spec after the cursor (dropping entries that could be redone) and commits.
        Returns the workspace's new revision."""
        return self._push(workspace_id, spec, description, kind)[2]

    def push_tracked(self, known: TrackedHistory, spec: Spec, description: str,
                     kind: str = "edit", strict: bool = False) -> TrackedHistory:
        """Pushes `spec` as `push` does and returns the history after it: built in memory from `known` when no other
        writer changed the workspace since `known` (the spec is neither read back nor validated again), else
        caught up with `track`. `strict`: write only if the workspace is still at `known.revision`, else raise
        StaleRevision (checked and written in one transaction, so two tabs never both win)."""
        created, before, after = self._push(known.workspace_id, spec, description, kind,
                                            known.revision if strict else None)
        if (created, before) == (known.created, known.revision):
            return known.pushed(spec, description, kind, after)
        return self.track(known.workspace_id, known)

    def _push(self, workspace_id: str, spec: Spec, description: str, kind: str,
              expected: int | None = None) -> tuple[float, int, int]:
        """Pushes and commits; returns the workspace's creation time and its revisions before and after. With
        `expected`, raises StaleRevision instead when the workspace is at another revision."""
        if kind not in KINDS:
            raise ValueError(f"unknown history kind {kind!r}")
        now = time.time()
        with self._write() as connection:
            created, revision, cursor = self._state(connection, workspace_id, expected)
            connection.execute("DELETE FROM history WHERE workspace = ? AND position > ?", (workspace_id, cursor))
            connection.execute("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (workspace_id, cursor + 1, kind, description, _spec_text(spec), now, revision + 1))
            connection.execute("DELETE FROM history WHERE workspace = ? AND position <= ?",
                               (workspace_id, cursor + 1 - MAX_HISTORY))
            return created, revision, self._touch(connection, workspace_id, cursor + 1, now)

    def move_cursor(self, workspace_id: str, steps: int) -> int:
        """Moves the cursor `steps` entries (-1: undo, +1: redo) and commits; returns the new revision.
        Raises WorkspaceError when there is no entry there."""
        return self._move_cursor(workspace_id, steps)[2]

    def move_cursor_tracked(self, known: TrackedHistory, steps: int, strict: bool = False) -> TrackedHistory:
        """Moves the cursor as `move_cursor` does and returns the history after it: `known` with its cursor moved
        when no other writer changed the workspace since `known`, else caught up with `track`. `strict`: as for
        `push_tracked` (an undo from a stale page would undo another tab's edit)."""
        created, before, after = self._move_cursor(known.workspace_id, steps, known.revision if strict else None)
        if (created, before) == (known.created, known.revision):
            return known.moved(steps, after)
        return self.track(known.workspace_id, known)

    def _move_cursor(self, workspace_id: str, steps: int, expected: int | None = None) -> tuple[float, int, int]:
        """Moves the cursor and commits; returns the workspace's creation time and its revisions before and after.
        With `expected`, raises StaleRevision instead when the workspace is at another revision."""
        with self._write() as connection:
            created, revision, cursor = self._state(connection, workspace_id, expected)
            if steps == 0:
                return created, revision, self._touch(connection, workspace_id, cursor, time.time())
            side, order = ("<", "DESC") if steps < 0 else (">", "ASC")
            row = connection.execute(f"SELECT position FROM history WHERE workspace = ? AND position {side} ? "
                                     f"ORDER BY position {order} LIMIT 1 OFFSET ?",
                                     (workspace_id, cursor, abs(steps) - 1)).fetchone()
            if row is None:
                raise WorkspaceError("nothing to undo" if steps < 0 else "nothing to redo")
            return created, revision, self._touch(connection, workspace_id, row[0], time.time())

    def settings(self, workspace_id: str) -> dict:
        """Returns the workspace's view settings (a JSON object; {} when none or no such workspace). A value over
        MAX_SETTING_BYTES (stored by an older version) is left out."""
        with self._connection() as connection:
            row = connection.execute("SELECT settings FROM workspaces WHERE id = ?", (workspace_id,)).fetchone()
        try:
            value = json.loads(row[0]) if row and len(row[0]) <= 64 * MAX_SETTINGS_BYTES else {}
        except ValueError:
            return {}
        if not isinstance(value, dict):
            return {}
        return {key: item for key, item in value.items()
                if len(json.dumps(item, sort_keys=True)) <= MAX_SETTING_BYTES}

    def save_settings(self, workspace_id: str, settings: dict) -> None:
        """Stores the workspace's view settings (JSON-ready values only); does not bump the revision. Raises
        WorkspaceError, storing nothing, when a value is over MAX_SETTING_BYTES or all over MAX_SETTINGS_BYTES."""
        for name, value in settings.items():
            _setting_text(name, value)
        text = json.dumps(settings, sort_keys=True)
        if len(text) > MAX_SETTINGS_BYTES:
            raise WorkspaceError(f"the workspace's settings would be {len(text):,} bytes, over the limit of "
                                 f"{MAX_SETTINGS_BYTES:,}; not kept")
        with self._write() as connection:
            connection.execute("UPDATE workspaces SET settings = ?, used = ? WHERE id = ?",
                               (text, time.time(), workspace_id))

    def update_setting(self, workspace_id: str, name: str, value) -> dict:
        """Sets one view setting in one transaction, keeping the others as stored (another tab's
        or the server's); returns the workspace's settings after it. Raises WorkspaceError, storing nothing, when
        the value is over MAX_SETTING_BYTES or the settings would be over MAX_SETTINGS_BYTES."""
        _setting_text(name, value)
        with self._write() as connection:
            row = connection.execute("SELECT settings FROM workspaces WHERE id = ?", (workspace_id,)).fetchone()
            if row is None:
                raise WorkspaceError(f"no workspace {workspace_id}")
            try:
                settings = json.loads(row[0])
            except ValueError:
                settings = {}
            settings = {key: item for key, item in (settings if isinstance(settings, dict) else {}).items()
                        if len(json.dumps(item, sort_keys=True)) <= MAX_SETTING_BYTES}
            settings[name] = value
            text = json.dumps(settings, sort_keys=True)
            if len(text) > MAX_SETTINGS_BYTES:
                raise WorkspaceError(f"the workspace's settings would be {len(text):,} bytes, over the limit of "
                                     f"{MAX_SETTINGS_BYTES:,}; {ascii(str(name)[:40])} not kept")
            connection.execute("UPDATE workspaces SET settings = ?, used = ? WHERE id = ?",
                               (text, time.time(), workspace_id))
        return settings

    def mark_used(self, workspace_id: str) -> None:
        """Records that a page opened the workspace now (the least recently used go first; see enforce_limits)."""
        with self._write() as connection:
            connection.execute("UPDATE workspaces SET used = ? WHERE id = ?", (time.time(), workspace_id))

    def enforce_limits(self, keep=frozenset(), limits: tuple[int, int] | None = None) -> list[str]:
        """Removes the least recently used workspaces, never those in `keep` (held by open pages), until at most
        `limits` = (count, bytes of stored text; default `workspace_limits()`) remain; returns the removed ids.
        SQLite reuses the freed pages, so the file stops growing near that size."""
        max_count, max_bytes = limits or workspace_limits()
        with self._write() as connection:
            rows = connection.execute(
                "SELECT w.id, length(w.settings) + coalesce((SELECT sum(length(h.spec) + length(h.description)) "
                "FROM history h WHERE h.workspace = w.id), 0) FROM workspaces w "
                "ORDER BY coalesce(w.used, w.updated) ASC, w.created ASC").fetchall()
            count, total, removed = len(rows), sum(size for _, size in rows), []
            for workspace_id, size in rows:
                if count <= max_count and total <= max_bytes:
                    break
                if workspace_id in keep:
                    continue
                connection.execute("DELETE FROM history WHERE workspace = ?", (workspace_id,))
                connection.execute("DELETE FROM workspaces WHERE id = ?", (workspace_id,))
                count, total = count - 1, total - size
                removed.append(workspace_id)
        return removed

    def owner(self, workspace_id: str) -> str | None:
        """Returns the id of the browser that started a workspace (itself for one stored without), or None if there
        is no such workspace."""
        with self._connection() as connection:
            row = connection.execute("SELECT coalesce(owner, id) FROM workspaces WHERE id = ?",
                                     (workspace_id,)).fetchone()
        return None if row is None else row[0]

    def recent(self, limit: int = 10, owner: str | None = None) -> list[WorkspaceInfo]:
        """Returns the most recently changed workspaces of browser `owner` (all of them when None), newest first,
        each with its current entry's description and kind (one query: no history is parsed); names that cannot
        be printed (stored by an older version) come back escaped."""
        where, arguments = ("WHERE coalesce(w.owner, w.id) = ? ", (owner, limit)) if owner else ("", (limit,))
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT w.id, h.spec, (SELECT COUNT(*) FROM history WHERE workspace = w.id), w.updated, "
                "h.description, h.kind "
                "FROM workspaces w JOIN history h ON h.workspace = w.id AND h.position = w.cursor "
                f"{where}ORDER BY w.updated DESC LIMIT ?", arguments).fetchall()
        return [WorkspaceInfo(workspace_id, _stored_name(text), count, updated, printable(description), kind)
                for workspace_id, text, count, updated, description, kind in rows]

    @staticmethod
    def _state(connection, workspace_id: str, expected: int | None = None) -> tuple[float, int, int]:
        """Returns the workspace's creation time, revision and cursor; raises WorkspaceError if there is none, and
        StaleRevision if `expected` is given and the revision is another."""
        row = connection.execute("SELECT created, revision, cursor FROM workspaces WHERE id = ?",
                                 (workspace_id,)).fetchone()
        if row is None:
            raise WorkspaceError(f"no workspace {workspace_id}")
        if expected is not None and row[1] != expected:
            raise StaleRevision(workspace_id, row[1])
        return row

    @staticmethod
    def _touch(connection, workspace_id: str, cursor: int, now: float) -> int:
        connection.execute("UPDATE workspaces SET cursor = ?, updated = ?, used = ?, revision = revision + 1 "
                           "WHERE id = ?", (cursor, now, now, workspace_id))
        return connection.execute("SELECT revision FROM workspaces WHERE id = ?", (workspace_id,)).fetchone()[0]

    # Designs ----------------------------------------------------------------------------------------------------
    # Each design belongs to the browser that saved it (`owner`, a browser id): no other browser lists, opens,
    # replaces or deletes it. Designs with owner '' (saved by an older version, or through this API without an
    # owner) are shared: listed and opened by everyone, replaced or deleted only without an owner; a browser saving
    # under such a name gets its own design, listed instead of the shared one.

    def save_design(self, name: str, spec: Spec, owner: str | None = None) -> bool:
        """Saves `spec` as design `name` (trimmed, 1-100 characters) of browser `owner` (None: shared); returns True
        if it replaced one of the same owner."""
        name, owner = _design_name(name), _design_owner(owner)
        with self._write() as connection:
            replaced = connection.execute("SELECT 1 FROM designs WHERE owner = ? AND name = ?",
                                          (owner, name)).fetchone() is not None
            connection.execute("INSERT OR REPLACE INTO designs (owner, name, spec, spec_hash, saved) "
                               "VALUES (?, ?, ?, ?, ?)", (owner, name, _spec_text(spec), spec_hash(spec), time.time()))
        return replaced

    def load_design(self, name: str, owner: str | None = None) -> Spec:
        """Returns the spec saved as `name` by `owner` (else the shared one of that name); raises WorkspaceError if
        there is none or it no longer validates."""
        owner = _design_owner(owner)
        with self._connection() as connection:
            row = connection.execute("SELECT spec FROM designs WHERE name = ? AND owner IN (?, '') "
                                     "ORDER BY owner = '' LIMIT 1", (name, owner)).fetchone()
        if row is None:
            raise WorkspaceError(f"no saved design named {name!r}")
        try:
            return _spec_from_text(row[0])
        except (SpecError, ValueError) as error:
            raise WorkspaceError(f"design {name!r} is not a valid spec: {str(error).splitlines()[0]}") from None

    def designs(self, owner: str | None = None) -> list[DesignInfo]:
        """Returns the designs `owner` sees (its own, and the shared ones it has no design of the same name for),
        most recently saved first."""
        owner = _design_owner(owner)
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT name, spec, spec_hash, saved FROM designs d WHERE owner = ? OR (owner = '' AND NOT EXISTS "
                "(SELECT 1 FROM designs o WHERE o.owner = ? AND o.name = d.name)) ORDER BY saved DESC",
                (owner, owner)).fetchall()
        return [DesignInfo(printable(name), _stored_name(text), digest, saved) for name, text, digest, saved in rows]

    def delete_design(self, name: str, owner: str | None = None) -> None:
        """Deletes `owner`'s design `name`; raises WorkspaceError if it has none (a shared one is not deleted)."""
        owner = _design_owner(owner)
        with self._write() as connection:
            if connection.execute("DELETE FROM designs WHERE owner = ? AND name = ?", (owner, name)).rowcount:
                return
            shared = connection.execute("SELECT 1 FROM designs WHERE owner = '' AND name = ?", (name,)).fetchone()
        if shared:
            raise WorkspaceError(f"design {name!r} is shared (saved by an older version) and cannot be deleted "
                                 "from a browser")
        raise WorkspaceError(f"no saved design named {name!r}")


def _design_owner(owner) -> str:
    if owner is None:
        return ""
    if not is_workspace_id(owner):
        raise WorkspaceError("a browser id is 32 hexadecimal digits")
    return owner


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _stored_name(text: str) -> str:
    try:
        return printable(json.loads(text).get("name", "?"))
    except (ValueError, AttributeError):
        return "?"


def default_store() -> WorkspaceStore:
    """Returns the store in SpineScope's data directory (`$SPINESCOPE_HOME` or the per-user data folder)."""
    from spinescope.analysis.paths import data_dir

    return WorkspaceStore(Path(data_dir()) / WORKSPACE_FILE)
