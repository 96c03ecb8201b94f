"""The SQLite file of searches: one row per run (its settings as JSON, status, a cancel flag) and one row per
evaluated candidate, written the moment its result arrives (so a killed run loses only what was in flight).

Default file: `search.sqlite` in SpineScope's data directory (`analysis.paths.data_dir`); any path with `--db`.
WAL journal: a reader (the app following a run) never blocks the search that writes.
"""
from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

RUN_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL, config TEXT NOT NULL,
    status TEXT NOT NULL, cancel INTEGER NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS candidates (
    run_id TEXT NOT NULL REFERENCES runs(id), idx INTEGER NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL,
    spec_hash TEXT NOT NULL, origin TEXT NOT NULL, parent_idx INTEGER, move TEXT, status TEXT NOT NULL,
    objective REAL, macs INTEGER, params INTEGER, metrics TEXT NOT NULL, error TEXT, seconds REAL,
    attempts INTEGER NOT NULL, created REAL NOT NULL, PRIMARY KEY (run_id, idx));
"""
CANDIDATE_COLUMNS = ("idx", "name", "spec", "spec_hash", "origin", "parent_idx", "move", "status", "objective",
                     "macs", "params", "metrics", "error", "seconds", "attempts", "created")


class StoreError(OSError):
    """The search file cannot be used, or a run id is bad or unknown; str() is one line naming the value."""


def default_db_path() -> Path:
    """Returns the default search file: <data dir>/search.sqlite (raises DataDirError when the data directory
    cannot be used)."""
    from spinescope.analysis.paths import data_dir

    return data_dir() / "search.sqlite"


def check_run_id(run_id: str) -> str:
    """Returns `run_id` when it is 1-64 letters, digits, '_', '-', '.', starting with a letter or digit; raises
    StoreError naming it (escaped) otherwise."""
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise StoreError(f"run id {ascii(str(run_id)[:70])} must be 1-64 letters, digits, '_', '-' or '.', starting "
                         "with a letter or digit")
    return run_id


def new_run_id() -> str:
    """Returns a fresh run id: 'run-YYYYmmdd-HHMMSS-xxxx' (UTC, 4 random hex digits)."""
    import secrets

    return time.strftime("run-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(2)


class Store:
    """One search file. Every method opens its own short connection, so a Store can be shared between threads and
    used from several processes at once."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_db_path()
        try:
            if self.path.exists() and not self.path.is_file():
                raise StoreError(f"search file {ascii(str(self.path))} is not a file")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"search file {ascii(str(self.path))} cannot be used: {error}") from None
        except OSError as error:
            if isinstance(error, StoreError):
                raise
            raise StoreError(f"search file {ascii(str(self.path))} cannot be created: "
                             f"{error.strerror or type(error).__name__}") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def _write(self, sql: str, params=()) -> None:
        db = self._connect()
        try:
            with db:
                db.execute(sql, params)
        finally:
            db.close()

    def _read(self, sql: str, params=()) -> list[sqlite3.Row]:
        db = self._connect()
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def create_run(self, run_id: str, config: dict) -> None:
        """Stores a new run with `config` (JSON-ready) and status 'created'; raises StoreError if the id exists."""
        now = time.time()
        try:
            self._write("INSERT INTO runs (id, created, updated, config, status) VALUES (?, ?, ?, ?, 'created')",
                        (check_run_id(run_id), now, now, json.dumps(config, sort_keys=True)))
        except sqlite3.IntegrityError:
            raise StoreError(f"run {run_id!r} already exists in {ascii(str(self.path))}") from None

    def run(self, run_id: str) -> dict:
        """Returns {id, created, updated, config (dict), status, cancel (bool), message}; raises StoreError for an
        unknown run."""
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise StoreError(f"no run {ascii(str(run_id)[:70])} in {ascii(str(self.path))} (see `spinescope search "
                             "--list`)")
        row = dict(rows[0])
        row["config"], row["cancel"] = json.loads(row["config"]), bool(row["cancel"])
        return row

    def has_run(self, run_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM runs WHERE id = ?", (run_id,)))

    def runs(self) -> list[dict]:
        """Returns every run, newest first, with `done` (candidates evaluated), `failed` and `best` (highest
        objective, None before any)."""
        rows = self._read("""SELECT r.*, COUNT(c.idx) AS done, SUM(c.status = 'failed') AS failed,
                             MAX(c.objective) AS best FROM runs r LEFT JOIN candidates c ON c.run_id = r.id
                             GROUP BY r.id ORDER BY r.created DESC""")
        out = []
        for row in rows:
            item = dict(row)
            item["config"], item["cancel"], item["failed"] = json.loads(item["config"]), bool(item["cancel"]), \
                item["failed"] or 0
            out.append(item)
        return out

    def set_status(self, run_id: str, status: str, message: str = "") -> None:
        """Sets the run's status ('created', 'running', 'done', 'cancelled', 'failed') and message."""
        self._write("UPDATE runs SET status = ?, message = ?, updated = ? WHERE id = ?",
                    (status, message, time.time(), run_id))

    def set_config(self, run_id: str, config: dict) -> None:
        self._write("UPDATE runs SET config = ?, updated = ? WHERE id = ?",
                    (json.dumps(config, sort_keys=True), time.time(), run_id))

    def set_cancel(self, run_id: str, cancel: bool) -> None:
        """Raises (True) or clears (False) the run's cancel flag, which its runner reads between results."""
        self._write("UPDATE runs SET cancel = ?, updated = ? WHERE id = ?", (int(cancel), time.time(), run_id))

    def cancel_requested(self, run_id: str) -> bool:
        rows = self._read("SELECT cancel FROM runs WHERE id = ?", (run_id,))
        return bool(rows and rows[0]["cancel"])

    def progress(self, run_id: str) -> tuple[int, int]:
        """Returns (candidates stored, of which failed) without reading them."""
        row = self._read("SELECT COUNT(*) AS n, SUM(status = 'failed') AS failed FROM candidates WHERE run_id = ?",
                         (run_id,))[0]
        return row["n"], row["failed"] or 0

    def add_candidate(self, run_id: str, row: dict) -> None:
        """Stores one evaluated candidate (`row` has CANDIDATE_COLUMNS but `created`; spec and metrics as dicts).
        A row already stored for that index is kept (a result that arrives twice is written once)."""
        values = dict(row, spec=json.dumps(row["spec"], sort_keys=True), metrics=json.dumps(row["metrics"]),
                      created=time.time())
        columns = ", ".join(CANDIDATE_COLUMNS)
        self._write(f"INSERT OR IGNORE INTO candidates (run_id, {columns}) VALUES (?, {', '.join('?' * len(CANDIDATE_COLUMNS))})",
                    (run_id, *(values[c] for c in CANDIDATE_COLUMNS)))
        self._write("UPDATE runs SET updated = ? WHERE id = ?", (time.time(), run_id))

    def candidates(self, run_id: str, since: int = 0) -> list[dict]:
        """Returns the run's evaluated candidates with index >= `since` in index order, one dict each: the columns,
        `spec` and `metrics` as dicts (metrics: macs, params, rf_P3..rf_P7, memory_bytes, and for proxy AP ap50,
        train seconds)."""
        rows = self._read(f"SELECT {', '.join(CANDIDATE_COLUMNS)} FROM candidates WHERE run_id = ? AND idx >= ? "
                          "ORDER BY idx", (run_id, since))
        out = []
        for row in rows:
            item = dict(row)
            item["spec"], item["metrics"] = json.loads(item["spec"]), json.loads(item["metrics"])
            out.append(item)
        return out
