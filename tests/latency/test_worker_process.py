"""The worker subprocess from the caller's side, with small stand-in workers (no torch, so each runs in a fraction of
a second): spawn, payload, the line protocol, an error event, a worker that dies, the time limit, cancel and kill."""
import signal
import textwrap
import threading
import time

import psutil
import pytest

from spinescope.analysis.latency.errors import LatencyError
from spinescope.analysis.latency.worker_process import WORKER_MODULE, WorkerProcess

PREAMBLE = textwrap.dedent("""
    import json, os, signal, subprocess, sys, time

    def emit(event, **fields):
        print(json.dumps({"event": event, **fields}), flush=True)
""")


@pytest.fixture
def fake_worker(tmp_path, monkeypatch):
    """Returns make(body) -> a started WorkerProcess running `body` (after PREAMBLE) as a module."""
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    workers = []

    def make(body: str) -> WorkerProcess:
        name = f"fake_worker_{len(workers)}"
        (tmp_path / f"{name}.py").write_text(PREAMBLE + textwrap.dedent(body))
        worker = WorkerProcess(module=name)
        worker.start()
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()


def test_constructing_spawns_nothing():
    children = psutil.Process().children(recursive=True)
    worker = WorkerProcess()
    assert worker.module == WORKER_MODULE == "spinescope.analysis.latency.worker"
    assert worker.pid is None and worker.poll() is None and worker.started_at is None
    assert psutil.Process().children(recursive=True) == children


def test_payload_in_events_out_result_returned(fake_worker):
    worker = fake_worker("""
        payload = json.loads(sys.stdin.read())
        emit("ready", environment={})
        print("not a protocol line")
        emit("progress", phase="measure", done=1, total=2, model=None)
        emit("result", echo=payload)
    """)
    with pytest.raises(RuntimeError, match="already started"):
        worker.start()
    worker.send({"models": [1, 2], "iters": 3})
    seen = []
    message = worker.follow(30, seen.append)
    assert message == {"event": "result", "echo": {"models": [1, 2], "iters": 3}}
    assert [event["event"] for event in seen] == ["ready", "progress", "result"]  # the stray line is skipped
    worker.stop()
    assert worker.poll() is not None


def test_error_event_keeps_its_kind_and_line(fake_worker):
    worker = fake_worker("""
        sys.stdin.read()
        emit("error", kind="oom", message="out of memory: tried to allocate 3,072 MiB")
        sys.exit(1)
    """)
    worker.send({})
    with pytest.raises(LatencyError) as failed:
        worker.follow(30)
    assert (failed.value.kind, str(failed.value)) == ("oom", "out of memory: tried to allocate 3,072 MiB")


def test_death_without_result_names_the_status_and_the_last_stderr_line(fake_worker):
    worker = fake_worker("""
        sys.stdin.read()
        print("first problem", file=sys.stderr)
        print("boom: the last line", file=sys.stderr, flush=True)
        os._exit(3)
    """)
    worker.send({})
    with pytest.raises(LatencyError) as failed:
        worker.follow(30)
    assert failed.value.kind == "crash"
    assert str(failed.value) == "the latency worker exited with status 3 without a result: boom: the last line"


def test_killed_worker(fake_worker):
    worker = fake_worker("""
        sys.stdin.read()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    worker.send({})
    with pytest.raises(LatencyError, match=r"^the latency worker was killed by SIGKILL \(most likely the system ran "
                                           r"out of memory\)$") as failed:
        worker.follow(30)
    assert failed.value.kind == "crash"


def test_time_limit_counts_from_the_spawn_and_names_the_phase(fake_worker):
    worker = fake_worker("""
        sys.stdin.read()
        emit("progress", phase="measure", done=2, total=5, model=None)
        time.sleep(60)
    """)
    worker.send({})
    with pytest.raises(LatencyError) as failed:
        worker.follow(1.0)
    assert failed.value.kind == "timeout"
    assert str(failed.value) == ("timed out after 1 s while measuring (2/5); raise the time limit or lower iterations, "
                                 "batch or input size")
    assert time.perf_counter() - worker.started_at < 30
    worker.stop()
    assert worker.poll() is not None


def test_time_limit_before_any_event_says_the_worker_was_starting(fake_worker):
    worker = fake_worker("""
        time.sleep(60)
    """)
    with pytest.raises(LatencyError, match=r"^timed out after 0.3 s while the worker started; "):
        worker.follow(0.3)


def test_cancel_flag_and_stop_from_another_thread(fake_worker):
    worker = fake_worker("""
        sys.stdin.read()
        time.sleep(60)
    """)
    worker.send({})
    with pytest.raises(LatencyError, match="^latency run cancelled$") as cancelled:
        worker.follow(30, cancelled=lambda: True)
    assert cancelled.value.kind == "cancelled"

    stopper = threading.Timer(0.3, worker.stop)
    stopper.start()
    with pytest.raises(LatencyError, match="^latency run cancelled$"):
        worker.follow(30)  # returns as soon as the stop begins
    stopper.join(timeout=30)
    assert worker.poll() is not None  # and once stop() has returned, the worker is gone


def test_stop_kills_the_whole_process_group(fake_worker):
    worker = fake_worker("""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a worker deaf to SIGTERM still ends: SIGKILL follows
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        emit("ready", grandchild=grandchild.pid)
        time.sleep(60)
    """)
    ready = []
    threading.Thread(target=lambda: _follow_quietly(worker, ready.append), daemon=True).start()
    deadline = time.monotonic() + 30
    while not ready:
        assert time.monotonic() < deadline, "the stand-in worker never said ready"
        time.sleep(0.05)
    grandchild = psutil.Process(ready[0]["grandchild"])
    started = time.monotonic()
    worker.stop()
    assert worker.poll() == -signal.SIGKILL and time.monotonic() - started < 10
    grandchild.wait(timeout=10)  # SIGKILL reached the worker's whole session
    assert not grandchild.is_running()
    worker.stop()  # idempotent


def _follow_quietly(worker, on_event):
    try:
        worker.follow(60, on_event)
    except LatencyError:
        pass
