"""A latency run with progress and cancel: a monitor thread composing the memory guard, the worker process and the
building of results.

    job = LatencyJob([LatencyRequest(spec_a), LatencyRequest(spec_b)], device="auto", iters=20)  # checks options
    job.start()               # starts the monitor thread (which spawns the worker); nothing runs before this
    job.progress()            # Progress(phase='measure', done=12, total=40, ...)
    job.cancel()              # stops the worker; result() then raises LatencyError(kind='cancelled')
    job.wait(timeout)         # True once the job has ended
    results = job.result()    # list[LatencyResult], in request order; raises LatencyError (one-line message)

`start_latency_job(...)` builds and starts a job; `run_latency(...)` does the same and blocks. Several requests in
one job are built in one worker and timed interleaved (A B A B ...), so each median's `ratio_to_first` compares
models under the same machine load. Before the worker gets its payload, the memory the run needs is estimated on
the `meta` device and the run is refused when it would not fit (`analysis.latency.memory_guard`); a crash, an
out-of-memory error or a time-out of the worker (`analysis.latency.worker_process`) becomes a `LatencyError` with
a one-line message. The job stores nothing: its caller writes the history (`analysis.latency.history`).
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from spinescope.analysis.latency.errors import LatencyError
from spinescope.analysis.latency.request import (DEFAULT_ITERS, DEFAULT_TIMEOUT_S, DEFAULT_WARMUP, LatencyRequest,
                                      check_per_block, check_request, check_run_options, resolve_device, unique_labels,
                                      worker_payload)
from spinescope.analysis.latency.results import LatencyResult, build_results, run_order, worker_phase_times
from spinescope.analysis.latency.worker_process import WorkerProcess


@dataclass(frozen=True)
class Progress:
    """Where a job stands. phase: pending (not started), estimate, starting, build, compile, warmup, measure, done,
    failed or cancelled; `done` of `total` steps of that phase (timed calls while measuring)."""

    phase: str
    done: int = 0
    total: int = 0
    model: str | None = None
    message: str = ""

    @property
    def fraction(self) -> float:
        """Share of the current phase completed, 0..1 (1 when finished)."""
        if self.phase in ("done", "failed", "cancelled"):
            return 1.0
        return self.done / self.total if self.total else 0.0


class LatencyJob:
    """A latency run in a worker process. Thread-safe; `start()` it, poll `progress()`, stop it with `cancel()`,
    wait with `wait(timeout)` or `result(timeout)`. The constructor checks the options (LatencyError('invalid'))
    and starts nothing: no thread, no process."""

    def __init__(self, requests: list[LatencyRequest], *, device: str = "auto", threads: int | None = None,
                 iters: int = DEFAULT_ITERS, warmup: int = DEFAULT_WARMUP, timeout: float = DEFAULT_TIMEOUT_S,
                 memory_limit_bytes: int | None = None, per_block: bool = False):
        """device: 'auto' (a CUDA GPU when present, else the CPU), 'cpu' or 'cuda'. threads: CPU threads of the
        worker (default: torch's default, one per core). iters timed calls per model after `warmup` untimed ones.
        timeout: seconds for the whole run, worker start included. memory_limit_bytes caps what the run may use
        besides the device's own limit (default: SPINESCOPE_MAX_MEMORY_MIB when set, see `analysis.limits`).
        per_block: also time every block, the stem, the endpoints and the head inside the forward pass (each
        iteration then runs one pass without and one with the timing hooks; see `analysis.latency.worker`).
        Invalid options raise LatencyError('invalid') here; everything else is reported by `result()`."""
        from spinescope.analysis.limits import ResourceLimitError, max_memory_bytes

        requests = list(requests)
        if not requests:
            raise LatencyError("invalid", "no model to measure")
        check_run_options(iters, warmup, threads, timeout)
        if memory_limit_bytes is None:
            try:
                memory_limit_bytes = max_memory_bytes()
            except ResourceLimitError as error:
                raise LatencyError("invalid", str(error)) from None
        resolved = resolve_device(device)
        for request in requests:
            check_request(request, resolved)
        if per_block:
            check_per_block(requests)
        self.per_block = per_block
        self.requests = requests
        self.labels = unique_labels(requests)
        self.device = resolved
        self.threads = threads
        self.iters = iters
        self.warmup = warmup
        self.timeout = timeout
        self.memory_limit_bytes = memory_limit_bytes
        self.run_id = uuid.uuid4().hex[:12]
        self.run_order: list[str] = []  # labels in the order the worker timed them
        # Seconds: estimate_s (memory estimate, overlapping the worker's start), start_s (process start and
        # imports until the worker is ready), build_s, compile_s, warmup_s, measure_s, total_s (spawn to result).
        self.phase_times: dict[str, float] = {}
        self.worker: WorkerProcess | None = None  # set by the monitor thread when it spawns the worker
        self._progress = Progress("pending")
        self._results: list[LatencyResult] | None = None
        self._error: LatencyError | None = None
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- public ---------------------------------------------------------------------------------------------------

    def start(self) -> LatencyJob:
        """Starts the monitor thread, which spawns the worker; returns the job. A job starts once."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the latency job was already started")
            self._progress = Progress("estimate")
            self._thread = threading.Thread(target=self._run, name=f"latency-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def started(self) -> bool:
        return self._thread is not None

    def progress(self) -> Progress:
        """Returns the latest Progress (cheap; call it as often as a progress bar needs)."""
        with self._lock:
            return self._progress

    def done(self) -> bool:
        """True once the job has finished, failed or been cancelled."""
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Waits up to `timeout` seconds (None: until the job ends); returns True once the job has ended, False if
        it is still running. Raises RuntimeError for a job that was never started."""
        if self._thread is None:
            raise RuntimeError("the latency job was not started; call start()")
        return self._finished.wait(timeout)

    def cancel(self) -> None:
        """Stops the job: the worker process is terminated; `result()` raises LatencyError('cancelled')."""
        self._cancel.set()
        with self._lock:
            worker = self.worker
        if worker is not None:
            worker.stop()

    def result(self, timeout: float | None = None) -> list[LatencyResult]:
        """Waits up to `timeout` seconds (None: until the job ends) and returns the results in request order.
        Raises LatencyError with a one-line message if the run failed, and TimeoutError if it is still running."""
        if not self.wait(timeout):
            raise TimeoutError("the latency job is still running")
        if self._error is not None:
            raise self._error
        return list(self._results)

    # -- the monitor thread ---------------------------------------------------------------------------------------

    def _set_progress(self, phase: str, done: int = 0, total: int = 0, model: str | None = None,
                      message: str = "") -> None:
        with self._lock:
            self._progress = Progress(phase, done, total, model, message)

    def _run(self) -> None:
        try:
            self._results = self._execute()
            self._set_progress("done", message=f"{len(self._results)} model(s) measured")
        except LatencyError as error:
            self._error = error
            self._set_progress("cancelled" if error.kind == "cancelled" else "failed", message=str(error))
        except Exception as error:  # noqa: BLE001 - the caller gets one line, never a dead thread
            self._error = LatencyError("error", f"{type(error).__name__}: {error}".splitlines()[0])
            self._set_progress("failed", message=str(self._error))
        finally:
            if self.worker is not None:
                self.worker.stop()
            self._finished.set()

    def _execute(self) -> list[LatencyResult]:
        from spinescope.analysis.latency.memory_guard import MEMORY_HEADROOM, check_memory, check_time

        # The worker starts (imports take seconds) while this thread estimates memory on the meta device; it
        # instantiates nothing before it receives the payload, and is stopped if the run is refused.
        self._set_progress("estimate", message="estimating memory")
        with self._lock:
            if self._cancel.is_set():
                raise LatencyError("cancelled", "latency run cancelled")
            self.worker = worker = WorkerProcess()
            worker.start()
        needed, estimates = check_memory(self.requests, self.device, self.memory_limit_bytes)
        if self.device == "cpu":
            check_time(self.requests, self.iters * (2 if self.per_block else 1) + (1 if self.per_block else 0),
                       self.warmup, self.timeout)
        self.phase_times["estimate_s"] = time.perf_counter() - worker.started_at
        payload = worker_payload(self.requests, self.labels, device=self.device, threads=self.threads,
                                 iters=self.iters, warmup=self.warmup, memory_limit_bytes=self.memory_limit_bytes,
                                 memory_headroom=MEMORY_HEADROOM, estimated_bytes=needed,
                                 per_block=self.per_block)
        self._set_progress("starting", message="starting the worker process")
        worker.send(payload)
        message = worker.follow(self.timeout, self._on_event, self._cancel.is_set)
        self.phase_times.update(worker_phase_times(message))
        self.phase_times["total_s"] = time.perf_counter() - worker.started_at
        self.run_order = run_order(self.labels, message)
        created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return build_results(self.requests, message, estimates, device=self.device, warmup=self.warmup,
                             run_id=self.run_id, created_at=created_at)

    def _on_event(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "ready":
            self.phase_times["start_s"] = time.perf_counter() - self.worker.started_at
        elif kind == "progress":
            self._set_progress(event["phase"], event["done"], event["total"], event.get("model"))


def start_latency_job(requests: list[LatencyRequest], **options) -> LatencyJob:
    """Builds a LatencyJob (same options; invalid ones raise LatencyError('invalid') here), starts it and returns
    it at once."""
    return LatencyJob(requests, **options).start()


def wait_for(job: LatencyJob, on_progress=None) -> list[LatencyResult]:
    """Waits for a started `job`, calling `on_progress(Progress)` whenever the progress changes; cancels the job on
    Ctrl-C. Returns its results; raises LatencyError with a one-line message."""
    last = None
    try:
        while not job.wait(0.1):
            current = job.progress()
            if on_progress is not None and current != last:
                on_progress(current)
                last = current
    except KeyboardInterrupt:
        job.cancel()
        raise
    if on_progress is not None and job.progress() != last:
        on_progress(job.progress())
    return job.result()


def run_latency(requests: list[LatencyRequest], *, on_progress=None, history: bool = True,
                history_path=None, **options) -> list[LatencyResult]:
    """Blocking form of `start_latency_job` (same options): starts a job and waits for it, calling
    `on_progress(Progress)` whenever the progress changes. As a caller of the job, stores the results in the
    history when `history` (in `history_path`, default data_dir()/history.sqlite; a failed write leaves them
    without `history_id`). Returns the results in request order; raises LatencyError with a one-line message."""
    results = wait_for(start_latency_job(requests, **options), on_progress)
    if history:
        from spinescope.analysis.latency.history import save_results

        results, _ = save_results(results, history_path)
    return results
