"""Proxy-training results in a real SQLite file: one row per run, read back by spec hash, WAL mode."""
import json
import sqlite3

from spinescope.analysis.training.store import load_results, save_result
from spinescope.analysis.training.train import ProxyResult


def _result(spec_hash: str, ap: float) -> ProxyResult:
    return ProxyResult(proxy_ap=ap, ap50=2 * ap, seconds=3.5, steps=10, ap75=ap / 2, ap_small=None, batch_size=4,
                       image_size=(96, 128), width_scale=0.5, seed=7, device="cpu", spec_name="x", spec_hash=spec_hash,
                       dataset="/data/shapes", learning_rate=0.01, losses=[2.0, 1.5])


def test_rows_are_stored_and_read_back(tmp_path):
    path = tmp_path / "sub" / "runs.sqlite"
    assert save_result(_result("aaaa", 0.25), path) == 1
    assert save_result(_result("bbbb", 0.5), path) == 2
    rows = load_results(path)
    assert [row["spec_hash"] for row in rows] == ["aaaa", "bbbb"]
    first = rows[0]
    assert (first["steps"], first["batch"], first["image_size"], first["seed"], first["width_scale"]) == \
        (10, 4, "128x96", 7, 0.5)  # WIDTHxHEIGHT
    assert (first["proxy_ap"], first["ap50"], first["ap75"], first["ap_small"]) == (0.25, 0.5, 0.125, None)
    stored = json.loads(first["result"])
    assert stored["label"] == "proxy AP (short training on shapes)" and stored["losses"] == [2.0, 1.5]
    assert [row["id"] for row in load_results(path, spec_hash="bbbb")] == [2]
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
