"""The latency history: a real SQLite file under SPINESCOPE_HOME, shared by processes writing at the same time;
`save_results` as a job's caller uses it."""
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from spinescope.analysis.latency.history import (compare_results, connect, count_results, get_results, list_results,
                                     save_results, store_results)
from spinescope.analysis.paths import data_dir

ROOT = Path(__file__).resolve().parents[2]

# A result as the latency job makes it (figures chosen by hand so that ratios are checkable).
RESULT_CODE = textwrap.dedent("""
    from spinescope.analysis.latency.results import LatencyResult

    def make_result(label, median_ms, input_size=64, threads=1, run_id="run-a"):
        return LatencyResult(
            label=label, spec_name=label, spec_hash="h-" + label, input_size=input_size, head="none", batch=2,
            device="cpu", device_name="Test CPU", precision="fp32", dtype="float32", memory_format="contiguous",
            fold_bn=False, compiled=False, threads=threads, iterations=3, warmup=1, median_ms=median_ms,
            p10_ms=median_ms * 0.9, p90_ms=median_ms * 1.2, mean_ms=median_ms * 1.05, min_ms=median_ms * 0.8,
            throughput=2 / (median_ms / 1e3), peak_memory_bytes=3 * 2**20, weight_bytes=2 * 2**20,
            activation_bytes=2**20, estimated_memory_bytes=3 * 2**20, build_s=0.1, compile_s=None, bn_folded=0,
            bn_remaining=10, ratio_to_first=1.0, torch_version="2.13.0+cpu",
            environment={"torch_version": "2.13.0+cpu", "device_name": "Test CPU", "threads": threads},
            run_id=run_id, created_at="2026-01-01T00:00:00+00:00",
            samples_ms=[median_ms * 0.8, median_ms, median_ms * 1.3])
""")
namespace: dict = {}
exec(RESULT_CODE, namespace)
make_result = namespace["make_result"]


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _python(code: str, env_home: Path) -> subprocess.Popen:
    env = {**os.environ, "SPINESCOPE_HOME": str(env_home), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_data_dir_follows_spinescope_home_and_is_created(spinescope_home):
    assert not spinescope_home.exists()
    assert data_dir() == spinescope_home and spinescope_home.is_dir()


def test_data_dir_defaults_to_the_per_user_data_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("SPINESCOPE_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "spinescope" and data_dir().is_dir()


def test_store_list_get_and_compare(spinescope_home):
    ids = store_results([make_result("A", 10.0), make_result("B", 25.0)])
    ids += store_results([make_result("A", 40.0, input_size=128, threads=2, run_id="run-b")])
    assert ids == [1, 2, 3]
    newest = list_results()
    assert [entry.id for entry in newest] == [3, 2, 1]
    assert newest[2].settings["batch"] == 2 and newest[2].environment["device_name"] == "Test CPU"
    assert newest[2].figures["samples_ms"] == [8.0, 10.0, 13.0]
    assert [entry.id for entry in list_results(limit=1)] == [3]
    assert [entry.id for entry in list_results(spec_hash="h-A")] == [3, 1]
    assert [entry.label for entry in get_results([2, 1])] == ["B", "A"]
    with pytest.raises(KeyError, match="no stored latency result with id 99"):
        get_results([99])
    rows = compare_results([1, 2, 3])
    assert [row["ratio_to_first"] for row in rows] == [1.0, 2.5, 4.0]
    assert rows[1]["differs"] == [] and rows[2]["differs"] == ["input_size", "threads"]
    assert json.loads(json.dumps(rows))  # JSON-ready


def test_history_survives_across_processes(spinescope_home):
    writer = _python(RESULT_CODE + textwrap.dedent("""
        from spinescope.analysis.latency.history import store_results
        print(store_results([make_result("written-elsewhere", 12.5)]))
    """), spinescope_home)
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert out.strip() == "[1]"
    reader = _python(textwrap.dedent("""
        import json
        from spinescope.analysis.latency.history import list_results
        print(json.dumps([entry.to_dict() for entry in list_results()]))
    """), spinescope_home)
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    (row,) = json.loads(out)
    assert (row["id"], row["label"], row["median_ms"], row["throughput"]) == (1, "written-elsewhere", 12.5, 160.0)
    assert list_results()[0].label == "written-elsewhere"  # and this process reads it too


def _wait_for_files(paths: list[Path], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths):
        assert time.monotonic() < deadline, f"{sum(not p.exists() for p in paths)} writers never got ready"
        time.sleep(0.01)


def test_concurrent_writers_do_not_corrupt_the_file(spinescope_home, tmp_path):
    writers, rows_each = 8, 25
    signals = tmp_path / "signals"
    signals.mkdir()
    # Two barriers make the writers overlap however slowly each starts: all wait for `go`, write one row, then wait
    # until every writer has written one before writing the rest. Each reports when it wrote its first and last row.
    code = RESULT_CODE + textwrap.dedent(f"""
        import json, sys, time
        from pathlib import Path
        from spinescope.analysis.latency.history import store_results

        signals, writer, writers = Path({str(signals)!r}), sys.argv[1], {writers}

        def wait_for(prefix):
            while len(list(signals.glob(prefix + "-*"))) < writers and not (signals / "abort").exists():
                time.sleep(0.005)

        (signals / f"ready-{{writer}}").touch()
        while not (signals / "go").exists():
            time.sleep(0.005)
        store_results([make_result(f"w{{writer}}-0", 1.0)])
        first_done = time.time()
        (signals / f"first-{{writer}}").touch()
        wait_for("first")
        for index in range(1, {rows_each}):
            store_results([make_result(f"w{{writer}}-{{index}}", 1.0 + index)])
        print(json.dumps([first_done, time.time()]))
    """)
    env = {**os.environ, "SPINESCOPE_HOME": str(spinescope_home), "PYTHONPATH": str(ROOT)}
    processes = [subprocess.Popen([sys.executable, "-c", code, str(n)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for n in range(writers)]
    try:
        _wait_for_files([signals / f"ready-{n}" for n in range(writers)])
        (signals / "go").touch()
        spans = []
        for process in processes:
            out, err = process.communicate(timeout=180)
            assert process.returncode == 0, err
            spans.append(json.loads(out))
    finally:
        (signals / "abort").touch()
        for process in processes:
            process.kill()
            process.wait()
    # Every writer still had rows to write after every other writer had written its first: they overlapped.
    assert max(first for first, _ in spans) < min(last for _, last in spans)
    assert count_results() == writers * rows_each
    labels = {entry.label for entry in list_results(limit=1000)}
    assert labels == {f"w{n}-{i}" for n in range(writers) for i in range(rows_each)}
    with sqlite3.connect(spinescope_home / "history.sqlite") as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_connection_settings(spinescope_home):
    connection = connect()
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        connection.close()


def test_a_failed_write_leaves_nothing_behind(spinescope_home):
    store_results([make_result("kept", 5.0)])
    broken = make_result("broken", 5.0)
    broken.median_ms = None  # violates NOT NULL on the second insert, after the first succeeded
    with pytest.raises(sqlite3.IntegrityError):
        store_results([make_result("first-of-batch", 1.0), broken])
    assert [entry.label for entry in list_results()] == ["kept"]  # the whole transaction was rolled back


def test_save_results_for_the_caller(spinescope_home):
    results = [make_result("A", 10.0), make_result("B", 20.0)]
    saved, warning = save_results(results)
    assert warning is None and [result.history_id for result in saved] == [1, 2]
    assert [result.history_id for result in results] == [None, None]  # copies; the caller's list is untouched
    assert [entry.label for entry in list_results()] == ["B", "A"]


def test_save_results_says_in_one_line_when_it_cannot(spinescope_home):
    spinescope_home.mkdir(parents=True)
    (spinescope_home / "history.sqlite").write_bytes(b"this is not an SQLite database" * 100)
    results = [make_result("A", 10.0)]
    saved, warning = save_results(results)
    assert saved == results and saved[0].history_id is None
    assert warning == "history not saved: DatabaseError: file is not a database"
