"""The latency worker as seen from the caller: spawning `spinescope.latency.worker`, the line protocol, the
time limit, cancel and kill. Nothing here knows what the figures mean or where results are stored.

Protocol: one JSON object on the worker's stdin (`send`), JSON lines back on its stdout, one event each: ready,
progress, built, result or error (`follow`). Whatever else the worker prints goes to its stderr, of which the last
lines are kept to explain a worker that died without a result.

    worker = WorkerProcess()
    worker.start()                       # the worker imports torch meanwhile; it waits for the payload
    worker.send(payload)
    message = worker.follow(timeout, on_event, cancelled)   # the result event, or LatencyError
    worker.stop()                        # SIGTERM, then SIGKILL, to the worker's process group
"""
from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Callable

from spinescope import PACKAGE_PARENT
from spinescope.analysis.latency.errors import LatencyError

ROOT = PACKAGE_PARENT
WORKER_MODULE = "spinescope.analysis.latency.worker"
STDERR_LINES_KEPT = 20

_PHASE_WORDS = {"starting": "while the worker started", "build": "while building", "compile": "while compiling",
                "warmup": "during warm-up", "measure": "while measuring"}


class WorkerProcess:
    """One worker subprocess in its own session (so `stop()` reaches everything it started). Not started by the
    constructor: call `start()`. `follow()` runs in one thread; `stop()` may be called from any thread."""

    def __init__(self, module: str = WORKER_MODULE):
        self.module = module
        self.started_at: float | None = None  # time.perf_counter() at spawn; the time limit counts from here
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        self._process: subprocess.Popen | None = None
        self._events: queue.Queue = queue.Queue()
        self._stopped = threading.Event()
        self._last_progress = ("starting", 0, 0)

    # -- life cycle -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Spawns the worker and the two threads that read its stdout (events) and stderr (kept tail)."""
        if self._process is not None:
            raise RuntimeError("the worker process was already started")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.started_at = time.perf_counter()
        self._process = subprocess.Popen([sys.executable, "-m", self.module], cwd=str(ROOT), env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, start_new_session=True)
        threading.Thread(target=_read_lines, args=(self._process.stdout, self._events.put), daemon=True,
                         name=f"latency-worker-{self._process.pid}-stdout").start()
        threading.Thread(target=_read_lines, args=(self._process.stderr, self.stderr_tail.append), daemon=True,
                         name=f"latency-worker-{self._process.pid}-stderr").start()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def poll(self) -> int | None:
        """The worker's exit status, or None while it runs (or before `start()`)."""
        return None if self._process is None else self._process.poll()

    def stop(self) -> None:
        """Ends the worker and everything it started: SIGTERM to its process group, SIGKILL after 3 s. Idempotent;
        after it `follow()` raises LatencyError('cancelled') unless the result had already arrived."""
        self._stopped.set()
        process = self._process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        except ProcessLookupError:
            pass

    # -- protocol -------------------------------------------------------------------------------------------------

    def send(self, payload: dict) -> None:
        """Writes the payload (one JSON object) on the worker's stdin and closes it."""
        try:
            self._process.stdin.write(json.dumps(payload))
            self._process.stdin.close()
        except OSError:
            pass  # the worker died at once; `follow` reports it from its exit status

    def follow(self, timeout: float, on_event: Callable[[dict], None] | None = None,
               cancelled: Callable[[], bool] = lambda: False) -> dict:
        """Reads the worker's events until its result, calling `on_event(event)` for each; returns the result event.
        `timeout` seconds count from the spawn. Raises LatencyError: 'cancelled' once `cancelled()` is true or the
        worker was stopped, 'timeout' past the limit (naming the phase it was in), the worker's own kind for an
        error event, 'crash' when it died without a result."""
        deadline = self.started_at + timeout
        while True:
            if cancelled() or self._stopped.is_set():
                raise LatencyError("cancelled", "latency run cancelled")
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise LatencyError("timeout", f"timed out after {timeout:g} s {self._where()}; raise the time limit "
                                              "or lower iterations, batch or input size")
            try:
                line = self._events.get(timeout=min(remaining, 0.05))
            except queue.Empty:
                continue
            if line is None:  # stdout closed: the worker is gone without a result
                raise self._death_error(cancelled)
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            kind = event.get("event")
            if kind == "progress":
                self._last_progress = (event["phase"], event["done"], event["total"])
            if on_event is not None:
                on_event(event)
            if kind == "result":
                return event
            if kind == "error":
                raise LatencyError(event.get("kind", "error"), event["message"])

    def _where(self) -> str:
        phase, done, total = self._last_progress
        return _PHASE_WORDS.get(phase, f"in {phase}") + (f" ({done}/{total})" if total else "")

    def _death_error(self, cancelled: Callable[[], bool]) -> LatencyError:
        try:
            status = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            status = None
        if cancelled() or self._stopped.is_set():
            return LatencyError("cancelled", "latency run cancelled")
        if status is not None and status < 0:
            name = signal.Signals(-status).name
            hint = " (most likely the system ran out of memory)" if -status == signal.SIGKILL else ""
            return LatencyError("crash", f"the latency worker was killed by {name}{hint}")
        tail = [line for line in self.stderr_tail if line]
        detail = f": {tail[-1][:200]}" if tail else ""
        return LatencyError("crash", f"the latency worker exited with status {status} without a result{detail}")


def _read_lines(stream, sink) -> None:
    """Passes each line of `stream` (without its newline) to `sink`, then None once the stream ends."""
    try:
        for line in stream:
            sink(line.rstrip("\n"))
    except (OSError, ValueError):
        pass
    finally:
        sink(None)
