"""Proxy-training results, one row per run, in an SQLite file (default: data_dir()/training.sqlite).

WAL mode with a busy timeout and one `BEGIN IMMEDIATE` per write, so several processes (a search's workers, the
CLI) may write at once."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from spinescope.analysis.paths import data_dir

FILE_NAME = "training.sqlite"
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS proxy_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,        -- ISO 8601, UTC
    spec_name TEXT NOT NULL,
    spec_hash TEXT NOT NULL,         -- of the spec as trained (after the width scale)
    dataset TEXT NOT NULL,           -- the dataset directory
    steps INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    image_size TEXT NOT NULL,        -- "WIDTHxHEIGHT" in pixels
    width_scale REAL NOT NULL,
    seed INTEGER NOT NULL,
    device TEXT NOT NULL,
    proxy_ap REAL NOT NULL,          -- AP@[.5:.95] in [0, 1], short training: not COCO AP
    ap50 REAL NOT NULL,
    ap75 REAL NOT NULL,
    ap_small REAL,
    ap_medium REAL,
    ap_large REAL,
    seconds REAL NOT NULL,           -- training and evaluation, wall clock
    result TEXT NOT NULL             -- JSON: the whole ProxyResult
);
CREATE INDEX IF NOT EXISTS proxy_runs_by_spec ON proxy_runs (spec_hash, created_at);
"""
COLUMNS = ("spec_name", "spec_hash", "dataset", "steps", "batch", "image_size", "width_scale", "seed", "device",
           "proxy_ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "seconds")


def default_path() -> Path:
    """Returns the default results file: data_dir()/training.sqlite."""
    return data_dir() / FILE_NAME


def connect(path: str | Path | None = None) -> sqlite3.Connection:
    """Opens (creating if needed) the results database in WAL mode; returns an autocommit connection."""
    path = Path(path) if path is not None else default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode = WAL")
        connection.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
    except BaseException:
        connection.close()
        raise
    return connection


def save_result(result, path: str | Path | None = None) -> int:
    """Stores one ProxyResult (analysis.training.train) as a row; returns its id."""
    data = result.to_dict()
    values = [data["batch_size" if column == "batch" else column] for column in COLUMNS]
    connection = connect(path)
    try:
        connection.execute("BEGIN IMMEDIATE")
        cursor = connection.execute(
            f"INSERT INTO proxy_runs (created_at, {', '.join(COLUMNS)}, result) VALUES "
            f"({', '.join('?' * (len(COLUMNS) + 2))})",
            [datetime.now(timezone.utc).isoformat(timespec="seconds"), *values, json.dumps(data)])
        connection.execute("COMMIT")
        return int(cursor.lastrowid)
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()


def load_results(path: str | Path | None = None, spec_hash: str | None = None) -> list[dict]:
    """Returns the stored runs (newest last) as dicts of the columns plus `id` and `created_at`; of one spec hash
    when given."""
    connection = connect(path)
    try:
        query = "SELECT * FROM proxy_runs" + (" WHERE spec_hash = ?" if spec_hash else "") + " ORDER BY id"
        rows = connection.execute(query, (spec_hash,) if spec_hash else ()).fetchall()
    finally:
        connection.close()
    return [{key: row[key] for key in row.keys()} for row in rows]
