"""Real worker processes: a local spawned pool gives the in-process results; a candidate whose worker process dies
is evaluated again (never dropped) or, when it dies every time, stored as failed with the reason; a search process
killed with SIGKILL and resumed with the same id ends with the uninterrupted run's results."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from spinescope.analysis.search.engine import MAX_ATTEMPTS, SearchConfig, create_run, run_search
from spinescope.analysis.search.space import Constraints, make_space
from spinescope.analysis.search.store import Store

from search.search_helpers import DyingEvaluate, SlowEvaluate, results

pytestmark = pytest.mark.slow
CONFIG = SearchConfig(make_space(constraints=Constraints(macs_max=95e9)), "evolution", "cost", budget=10, seed=4,
                      population=4, tournament=2, round_size=2)


def test_a_process_pool_gives_the_in_process_results_and_retries_a_lost_worker(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    create_run(store, CONFIG, "inline")
    run_search(store, "inline", workers=0)
    dying = DyingEvaluate(tmp_path, index=5, deaths=1)
    create_run(store, CONFIG, "pool")
    assert run_search(store, "pool", workers=2, evaluate=dying)["status"] == "done"
    rows = store.candidates("pool")
    assert results(rows) == results(store.candidates("inline"))
    assert dying.attempts() == 2 and rows[5]["attempts"] >= 2 and rows[5]["status"] == "done"


def test_a_candidate_whose_worker_always_dies_is_stored_as_failed(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    dying = DyingEvaluate(tmp_path, index=1, deaths=100)
    create_run(store, SearchConfig(CONFIG.space, "random", budget=3), "r")
    assert run_search(store, "r", workers=1, evaluate=dying)["status"] == "done"
    rows = store.candidates("r")
    assert [row["status"] for row in rows] == ["done", "failed", "done"]
    assert dying.attempts() == MAX_ATTEMPTS and rows[1]["attempts"] == MAX_ATTEMPTS
    assert "lost" in rows[1]["error"] and rows[1]["objective"] is None


def test_cancelling_a_pool_run_ends_its_long_evaluations(tmp_path):
    import threading

    store = Store(tmp_path / "s.sqlite")
    create_run(store, SearchConfig(CONFIG.space, "random", budget=4), "c")
    threading.Timer(3.0, lambda: Store(tmp_path / "s.sqlite").set_cancel("c", True)).start()
    start = time.perf_counter()
    outcome = run_search(store, "c", workers=2, evaluate=SlowEvaluate(120))
    assert outcome["status"] == "cancelled" and store.candidates("c") == []
    assert time.perf_counter() - start < 30  # the two 120 s evaluations were ended, not awaited


def stored(db, run_id: str) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return connection.execute("SELECT COUNT(*) FROM candidates WHERE run_id = ?", (run_id,)).fetchone()[0]
    except sqlite3.OperationalError:  # the file or its tables are not there yet
        return 0


def test_a_killed_search_resumes_to_the_uninterrupted_result(tmp_path):
    db = tmp_path / "s.sqlite"
    command = [sys.executable, "-m", "spinescope", "search", "--db", str(db), "--run", "k"]
    options = ["--budget", "40", "--population", "6", "--tournament", "3", "--round", "3", "--seed", "5",
               "--gmacs", "80:95", "--workers", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command + options, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 120
    while stored(db, "k") < 10 and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    at_kill = stored(db, "k")
    assert process.returncode == -signal.SIGKILL and 10 <= at_kill < 40
    assert Store(db).run("k")["status"] == "running"  # killed: nobody marked it
    resumed = subprocess.run(command + ["--budget", "40"], capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming run k: {at_kill} of 40 candidates already stored" in resumed.stdout
    store = Store(db)
    create_run(store, SearchConfig.from_dict(store.run("k")["config"]), "whole")
    run_search(store, "whole")
    assert results(store.candidates("k")) == results(store.candidates("whole"))
    assert store.run("k")["status"] == "done"
