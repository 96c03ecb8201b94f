"""Every latency result, kept in an SQLite file (default: data_dir()/history.sqlite).

Each row holds the spec's content hash and name, the settings, the environment (torch version, device name,
threads) and the figures, with a UTC timestamp. Several processes may write at once (the CLI, the app, tests):
the database runs in WAL mode with a busy timeout, and every write is one `BEGIN IMMEDIATE` transaction, so a
writer waits for the others instead of failing or corrupting the file.

A latency job stores nothing itself: its caller (the CLI, the app, `run_latency`) hands the results to
`save_results`.
"""
from __future__ import annotations

import json
import math
import re
import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path

from spinescope.analysis.paths import data_dir

FILE_NAME = "history.sqlite"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS latency (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,            -- ISO 8601, UTC
    run_id TEXT NOT NULL,                -- results measured together (interleaved) share it
    label TEXT NOT NULL,
    spec_name TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    input_size INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    head TEXT NOT NULL,
    device TEXT NOT NULL,                -- cpu | cuda
    device_name TEXT NOT NULL,
    precision TEXT NOT NULL,
    threads INTEGER NOT NULL,
    torch_version TEXT NOT NULL,
    median_ms REAL NOT NULL,
    p10_ms REAL NOT NULL,
    p90_ms REAL NOT NULL,
    mean_ms REAL NOT NULL,
    throughput REAL NOT NULL,            -- images/s
    peak_memory_bytes INTEGER NOT NULL,
    ratio_to_first REAL NOT NULL,
    settings TEXT NOT NULL,              -- JSON
    environment TEXT NOT NULL,           -- JSON
    figures TEXT NOT NULL                -- JSON: the whole result, per-call samples included
);
CREATE INDEX IF NOT EXISTS latency_by_spec ON latency (spec_hash, created_at);
CREATE INDEX IF NOT EXISTS latency_by_time ON latency (created_at);
"""

_COLUMNS = ("created_at", "run_id", "label", "spec_name", "spec_hash", "input_size", "batch", "head", "device",
            "device_name", "precision", "threads", "torch_version", "median_ms", "p10_ms", "p90_ms", "mean_ms",
            "throughput", "peak_memory_bytes", "ratio_to_first")


@dataclass(frozen=True)
class HistoryEntry:
    """One stored result. Times in ms, throughput in images/s, memory in bytes; `ratio_to_first` within its run."""

    id: int
    created_at: str
    run_id: str
    label: str
    spec_name: str
    spec_hash: str
    input_size: int | str  # the side of a square input, else "WIDTHxHEIGHT"
    batch: int
    head: str
    device: str
    device_name: str
    precision: str
    threads: int
    torch_version: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    throughput: float
    peak_memory_bytes: int
    ratio_to_first: float
    settings: dict
    environment: dict
    figures: dict

    def to_dict(self, figures: bool = False) -> dict:
        """JSON-ready row; the full stored figures (with per-call samples) only when `figures`."""
        data = {name: getattr(self, name) for name in ("id", *_COLUMNS, "settings", "environment")}
        if figures:
            data["figures"] = self.figures
        return data


def history_path() -> Path:
    """Returns the default history file: data_dir()/history.sqlite."""
    return data_dir() / FILE_NAME


def connect(path: str | Path | None = None) -> sqlite3.Connection:
    """Opens (creating if needed) the history database in WAL mode with a busy timeout; autocommit, so writes
    make their own transactions. Returns the connection."""
    path = Path(path) if path is not None else history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        connection.row_factory = sqlite3.Row
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _ensure_wal(connection)
        connection.execute("PRAGMA synchronous = NORMAL")
        if connection.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            # Idempotent, in one write transaction: processes creating the file at once simply queue.
            connection.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
    except BaseException:
        connection.close()
        raise
    return connection


def _ensure_wal(connection: sqlite3.Connection) -> None:
    """Puts the file in WAL mode (persistent, so only the first open converts it). The conversion needs exclusive
    access and SQLite does not run the busy handler for it: when processes open a new file at once, a loser gets
    'database is locked' or the old mode back, so it retries with backoff until the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() == "wal" or connection.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() == "wal":
                return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError("database is locked: could not switch the history file to WAL mode")
        time.sleep(delay)
        delay = min(2 * delay, 0.1)


class _transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT` (or `ROLLBACK` on an exception): takes the write lock up front, so two
    writers queue on the busy timeout instead of deadlocking on a lock upgrade."""

    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    def __enter__(self):
        self.connection.execute("BEGIN IMMEDIATE")
        return self.connection

    def __exit__(self, kind, error, trace):
        if not self.connection.in_transaction:
            return False
        self.connection.execute("ROLLBACK" if kind else "COMMIT")
        return False


def store_results(results, path: str | Path | None = None) -> list[int]:
    """Stores LatencyResult objects (one transaction for all); returns their row ids in the same order."""
    rows = []
    for result in results:
        figures = result.to_dict(samples=True)
        figures.pop("history_id", None)
        rows.append((*[figures["name"] if column == "label" else figures[column] for column in _COLUMNS],
                     json.dumps(result.settings), json.dumps(result.environment), json.dumps(figures)))
    placeholders = ", ".join("?" * (len(_COLUMNS) + 3))
    sql = f"INSERT INTO latency ({', '.join(_COLUMNS)}, settings, environment, figures) VALUES ({placeholders})"
    connection = connect(path)
    try:
        with _transaction(connection):
            return [connection.execute(sql, row).lastrowid for row in rows]
    finally:
        connection.close()


def save_results(results, path: str | Path | None = None) -> tuple[list, str | None]:
    """Stores a run's LatencyResult objects for the caller of a latency job. Returns (the results with their
    `history_id` set, None), or (the results unchanged, a one-line warning) when the history cannot be written:
    the figures stay valid without their rows."""
    try:
        ids = store_results(results, path)
    except Exception as error:  # noqa: BLE001 - figures are still valid without the history row
        return list(results), f"history not saved: {type(error).__name__}: {error}".splitlines()[0]
    return [replace(result, history_id=id_) for result, id_ in zip(results, ids)], None


class DamagedRow(KeyError):
    """A stored row that cannot be read back (a field cut off or of the wrong type, e.g. a file truncated or edited
    mid-row, which SQLite's integrity check does not see). args[0] is one line naming the row and the field."""


_TEXT = ("created_at", "run_id", "label", "spec_name", "spec_hash", "head", "device", "device_name", "precision",
         "torch_version")
_INTEGER = ("batch", "threads", "peak_memory_bytes")
_REAL = ("median_ms", "p10_ms", "p90_ms", "mean_ms", "throughput", "ratio_to_first")
_SIZE_TEXT = re.compile(r"[0-9]{1,6}x[0-9]{1,6}")


def _row_problem(data: dict) -> str | None:
    """Returns what is wrong with a stored row's fields (one line), or None; decodes its JSON fields in place."""
    for name in _TEXT:
        if not isinstance(data.get(name), str):
            return f"{name} is {type(data.get(name)).__name__}, not text"
    for name in _INTEGER:
        if not isinstance(data.get(name), int):
            return f"{name} is {type(data.get(name)).__name__}, not an integer"
    for name in _REAL:
        value = data.get(name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or (name == "median_ms" and value <= 0):
            return f"{name} is {ascii(value)[:40] if isinstance(value, (str, float)) else type(value).__name__}, " \
                   "not a finite number" + (" over 0" if name == "median_ms" else "")
    size = data.get("input_size")
    if not (isinstance(size, int) and size > 0) and not (isinstance(size, str) and _SIZE_TEXT.fullmatch(size)):
        return f"input_size is {ascii(size)[:40]}, not N or WxH"
    for name in ("settings", "environment", "figures"):
        text = data.get(name)
        try:
            value = json.loads(text) if isinstance(text, (str, bytes)) else None
        except (ValueError, RecursionError):
            value = None
        if not isinstance(value, dict):
            return f"{name} is not a JSON object (cut off?)"
        data[name] = value
    return None


def _entry(row: sqlite3.Row) -> HistoryEntry:
    """The row as a HistoryEntry; raises DamagedRow (one line) when a field cannot be read back."""
    data = dict(row)
    problem = _row_problem(data)
    if problem is not None:
        raise DamagedRow(f"history row {data.get('id')} is damaged: {problem}")
    return HistoryEntry(**data)


def list_results(limit: int = 50, spec_hash: str | None = None, path: str | Path | None = None,
                 skipped: list | None = None) -> list[HistoryEntry]:
    """Returns up to `limit` stored results, newest first, optionally only those of one spec content hash. A row
    that cannot be read back is left out; its one-line reason (DamagedRow) is appended to `skipped` when given."""
    connection = connect(path)
    try:
        where, arguments = ("WHERE spec_hash = ?", [spec_hash]) if spec_hash else ("", [])
        rows = connection.execute(f"SELECT * FROM latency {where} ORDER BY id DESC LIMIT ?",
                                  [*arguments, int(limit)]).fetchall()
    finally:
        connection.close()
    entries = []
    for row in rows:
        try:
            entries.append(_entry(row))
        except DamagedRow as error:
            if skipped is not None:
                skipped.append(error.args[0])
    return entries


def get_results(ids: list[int], path: str | Path | None = None) -> list[HistoryEntry]:
    """Returns the stored results with these ids, in the order given; raises KeyError naming a missing id, or
    DamagedRow (a KeyError) naming a row that cannot be read back."""
    connection = connect(path)
    try:
        entries = []
        for id_ in ids:
            row = connection.execute("SELECT * FROM latency WHERE id = ?", (int(id_),)).fetchone()
            if row is None:
                raise KeyError(f"no stored latency result with id {id_}")
            entries.append(_entry(row))
        return entries
    finally:
        connection.close()


# Settings that must match for two medians to be compared as like for like.
_COMPARABLE = ("device", "device_name", "input_size", "batch", "head", "precision", "threads")


def compare_results(ids: list[int], path: str | Path | None = None) -> list[dict]:
    """Returns the stored results `ids` side by side: each row's figures with `ratio_to_first` recomputed against
    the first id's median and `differs` listing the settings in which it differs from the first (device, input
    size, batch, head, precision, threads): a ratio across those is not a fair comparison."""
    entries = get_results(ids, path)
    first = entries[0]
    rows = []
    for entry in entries:
        row = entry.to_dict()
        row["ratio_to_first"] = entry.median_ms / first.median_ms
        row["differs"] = [name for name in _COMPARABLE if getattr(entry, name) != getattr(first, name)]
        rows.append(row)
    return rows


def count_results(path: str | Path | None = None) -> int:
    """Returns the number of stored results."""
    connection = connect(path)
    try:
        return connection.execute("SELECT COUNT(*) FROM latency").fetchone()[0]
    finally:
        connection.close()
