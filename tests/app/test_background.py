"""The server's one background pool (app.background), with real threads, real processes and the real app: at
most SPINESCOPE_BACKGROUND_JOBS jobs run at once, waiting jobs start round-robin across sessions (a session's
second job waits behind the others' first), and each tab says where its job stands: "queued: 2nd of 3"."""
from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_runs import run
from spinescope.app import background
from spinescope.app.background import BackgroundError, Pool, configured_slots

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


def test_three_sessions_jobs_start_round_robin_within_the_bound_and_know_their_place():
    pool = Pool(2)
    gates, lock, live, peak = {}, threading.Lock(), [0], [0]

    def job(label):
        gates[label] = threading.Event()

        def work():
            with lock:
                live[0] += 1
                peak[0] = max(peak[0], live[0])
            gates[label].wait(10)
            with lock:
                live[0] -= 1
            return label
        return work

    tickets = {label: pool.submit(owner, label, job(label)) for owner, label in
               [("A", "A1"), ("A", "A2"), ("A", "A3"), ("B", "B1"), ("C", "C1")]}
    assert pool.started == ["A1", "A2"]
    # A already runs two: B's and C's first jobs go before A's third, though A asked first.
    assert [tickets[label].queue_text() for label in ("B1", "C1", "A3")] == [
        "queued: 1st of 3", "queued: 2nd of 3", "queued: 3rd of 3"]
    assert tickets["A1"].queue_text() is None and tickets["A1"].state == "running"
    for label in ("A1", "A2", "B1", "C1", "A3"):
        while label not in gates:
            time.sleep(0.01)
        gates[label].set()
        assert tickets[label].result(10) == label
    assert pool.started == ["A1", "A2", "B1", "C1", "A3"]
    assert peak[0] == pool.peak == 2


def test_real_worker_processes_never_run_more_than_the_bound_at_once():
    pool, spans, lock = Pool(2), [], threading.Lock()

    def work():
        began = time.monotonic()
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.4)"], check=True)
        with lock:
            spans.append((began, time.monotonic()))

    tickets = [pool.submit(owner, f"{owner}{index}", work) for index in range(2) for owner in "ABC"]
    for ticket in tickets:
        ticket.result(30)
    most = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert most == 2 and len(spans) == 6


def test_a_queued_job_can_be_cancelled_and_never_starts():
    pool, gate = Pool(1), threading.Event()
    first = pool.submit("A", "first", lambda: gate.wait(10))
    second = pool.submit("B", "second", lambda: pytest.fail("a cancelled job ran"))
    assert second.queue_text() == "queued: 1st of 1" and second.cancel() and second.done()
    gate.set()
    first.result(10)
    assert pool.started == ["first"]


@pytest.mark.parametrize("value", ["0", "65", "two", "２", "1.5", "-1"])
def test_a_bad_pool_size_is_one_line_naming_it(monkeypatch, value):
    monkeypatch.setenv("SPINESCOPE_BACKGROUND_JOBS", value)
    with pytest.raises(BackgroundError, match=re.escape(f"SPINESCOPE_BACKGROUND_JOBS={ascii(value)} must")):
        configured_slots()


def progress_texts(app) -> list[str]:
    return [item.proto.text.replace("\\", "") for item in app.get("progress")]


def test_the_tabs_say_where_their_job_stands_in_the_queue(home, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_BACKGROUND_JOBS", "1")
    gate = threading.Event()
    blocker = background.submit("someone else", "blocker", lambda: gate.wait(60))
    try:
        sweeper = run(AppTest.from_file(str(APP), default_timeout=60))
        sweeper.session_state["tab"] = "Sweeps"
        run(sweeper)
        texts = {item.label: item for item in sweeper.text_input}
        texts["Input sizes (px, comma list)"].set_value("64")
        next(item for item in sweeper.selectbox if item.label == "Device").set_value("cpu")
        run(sweeper)
        next(item for item in sweeper.button if item.label == "Start sweep").click()
        run(sweeper)
        assert any("queued: 1st of 1" in text for text in progress_texts(sweeper)), progress_texts(sweeper)
        checker = run(AppTest.from_file(str(APP), default_timeout=60))  # another browser, the Explore tab
        next(item for item in checker.button if item.label == "Verify with fvcore").click()
        run(checker)
        captions = [item.value.replace("\\", "") for item in checker.caption]
        assert any(text.startswith(":material/hourglass_top: queued: 2nd of 2") for text in captions), captions
        assert any("queued: 1st of 2" in text for text in progress_texts(run(sweeper)))
        next(item for item in sweeper.button if item.label == "Cancel sweep").click()
        run(sweeper)
        # The watcher collects the cancelled sweep within half a second; a page that runs while it does may see the
        # run gone before it shows the outcome (the next run shows it), so wait for the outcome itself.
        for _ in range(120):
            if run(sweeper).info:
                break
            time.sleep(0.25)
        assert [item.value.replace("\\", "") for item in sweeper.info] == ["Sweep cancelled; no point stored."]
        assert not any(item.label == "Cancel sweep" for item in sweeper.button)
        captions = [item.value.replace("\\", "") for item in run(checker).caption]
        assert any("queued: 1st of 1" in text for text in captions), captions
    finally:
        from spinescope.app import verify

        for entry in verify._registry()[1].values():
            if entry.future is not None:
                entry.future.cancel()
        gate.set()
        blocker.result(10)


def test_a_search_waits_for_its_slot_then_runs_as_it_would_alone(tmp_path):
    from spinescope.analysis.search import Constraints, SearchConfig, SearchError, Store, create_run, make_space
    from spinescope.analysis.search.engine import SearchJob, run_search
    from spinescope.app.background import QueuedJob

    space = make_space(constraints=Constraints(macs_min=80e9, macs_max=95e9))
    settings = dict(space=space, algorithm="evolution", objective="cost", budget=8, seed=3, population=4,
                    tournament=2, round_size=2)
    alone = Store(tmp_path / "alone.sqlite")
    create_run(alone, SearchConfig(**settings), "r")
    run_search(alone, "r")
    pool, gate = Pool(1), threading.Event()
    busy = pool.submit("A", "sweep", lambda: gate.wait(10))
    store = Store(tmp_path / "queued.sqlite")
    create_run(store, SearchConfig(**settings), "r")
    queued = QueuedJob(pool, "B", "search r", SearchJob(store, "r"), lambda: SearchError("cancelled while queued"))
    time.sleep(0.2)
    assert queued.queue_text() == "queued: 1st of 1" and not queued.done()
    assert queued.progress() == (0, 8) and store.candidates("r") == []  # nothing evaluated while it waits
    gate.set()
    assert busy.result(10) is True and queued.result(60)["status"] == "done"
    assert [row["spec_hash"] for row in store.candidates("r")] == [row["spec_hash"] for row in alone.candidates("r")]
    other = Store(tmp_path / "cancelled.sqlite")
    create_run(other, SearchConfig(**settings), "r")
    blocker = pool.submit("A", "sweep", lambda: time.sleep(0.5))
    cancelled = QueuedJob(pool, "B", "search r", SearchJob(other, "r"), lambda: SearchError("cancelled while queued"))
    cancelled.cancel()
    with pytest.raises(SearchError, match="cancelled while queued"):
        cancelled.result(10)
    assert blocker.result(10) is None and other.candidates("r") == []
