"""Latency of the real model, measured in an isolated worker process, with progress, cancel and history.

    job = start_latency_job([LatencyRequest(spec_a), LatencyRequest(spec_b)], device="auto", iters=20)
    job.progress()            # Progress(phase='measure', done=12, total=40, ...)
    job.cancel()              # stops the worker; result() then raises LatencyError(kind='cancelled')
    results = job.result()    # list[LatencyResult], in request order; raises LatencyError (one-line message)

`run_latency(...)` does the same and blocks. Several requests in one job are built in one worker and timed
interleaved (A B A B ...), so each median's `ratio_to_first` compares models under the same machine load.
Before the worker starts, the memory the run needs is estimated on the `meta` device
(`analysis.latency_memory`) and the run is refused when it would not fit; a crash, an out-of-memory error or a
time-out of the worker (`analysis.latency_worker`) becomes a `LatencyError` with a one-line message. Successful
results are stored in the history database (`analysis.history`). Requests, results and option checks live in
`analysis.latency_request` and are re-exported here.
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
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from analysis.latency_request import (DEFAULT_ITERS, DEFAULT_TIMEOUT_S, DEFAULT_WARMUP, DEVICES, HEADS,  # noqa: F401
                                      MAX_BATCH, MAX_ITERS, PRECISIONS, LatencyError, LatencyRequest, LatencyResult,
                                      Progress, check_request, check_run_options, cuda_available, describe_device,
                                      resolve_device, unique_labels)
from spinenet.spec import spec_hash, spec_to_dict

ROOT = Path(__file__).resolve().parent.parent


def _percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples, dtype=float), q))


_PHASE_WORDS = {"starting": "while the worker started", "build": "while building", "compile": "while compiling",
                "warmup": "during warm-up", "measure": "while measuring"}


def _dtype_name(precision: str) -> str:
    return {"fp32": "float32", "fp16": "float16 (autocast)", "bf16": "bfloat16 (autocast)"}[precision]


class LatencyJob:
    """A latency run in a worker process. Thread-safe; poll `progress()`, stop with `cancel()`, wait with
    `result(timeout)`. Create it with `start_latency_job`."""

    def __init__(self, requests: list[LatencyRequest], device: str, threads: int | None, iters: int, warmup: int,
                 timeout: float, memory_limit_bytes: int | None, history: bool, history_path: str | Path | None):
        self.requests = requests
        self.labels = unique_labels(requests)
        self.device = device
        self.threads = threads
        self.iters = iters
        self.warmup = warmup
        self.timeout = timeout
        self.memory_limit_bytes = memory_limit_bytes
        self.history = history
        self.history_path = history_path
        self.run_id = uuid.uuid4().hex[:12]
        self.run_order: list[str] = []  # labels in the order the worker timed them
        # Seconds: estimate_s (memory estimate, overlapping the worker's start), start_s (process start and
        # imports until the worker is ready), build_s, compile_s, warmup_s, measure_s, total_s (spawn to result).
        self.phase_times: dict[str, float] = {}
        self.history_error: str | None = None
        self._progress = Progress("estimate")
        self._results: list[LatencyResult] | None = None
        self._error: LatencyError | None = None
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._thread = threading.Thread(target=self._run, name=f"latency-{self.run_id}", daemon=True)
        self._thread.start()

    # -- public ---------------------------------------------------------------------------------------------------

    def progress(self) -> Progress:
        """Returns the latest Progress (cheap; call it as often as a progress bar needs)."""
        with self._lock:
            return self._progress

    def done(self) -> bool:
        """True once the job has finished, failed or been cancelled."""
        return self._finished.is_set()

    def cancel(self) -> None:
        """Stops the job: the worker process is terminated; `result()` raises LatencyError('cancelled')."""
        self._cancel.set()
        self._stop_worker()

    def result(self, timeout: float | None = None) -> list[LatencyResult]:
        """Waits up to `timeout` seconds (None: until the job ends) and returns the results in request order.
        Raises LatencyError with a one-line message if the run failed, and TimeoutError if it is still running."""
        if not self._finished.wait(timeout):
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
            self._stop_worker()
            self._finished.set()

    def _execute(self) -> list[LatencyResult]:
        from analysis.latency_memory import MEMORY_HEADROOM, check_memory

        # The worker starts (imports take seconds) while this thread estimates memory on the meta device; it
        # instantiates nothing before it receives the payload, and is stopped if the run is refused.
        self._set_progress("estimate", message="estimating memory")
        start = time.perf_counter()
        with self._lock:
            if self._cancel.is_set():
                raise LatencyError("cancelled", "latency run cancelled")
            self._process = process = self._spawn()
        needed, estimates = check_memory(self.requests, self.device, self.memory_limit_bytes)
        if self.device == "cpu":
            self._check_time()
        self.phase_times["estimate_s"] = time.perf_counter() - start
        payload = {
            "device": self.device, "threads": self.threads, "iters": self.iters, "warmup": self.warmup,
            "memory_limit_bytes": self.memory_limit_bytes, "memory_headroom": MEMORY_HEADROOM,
            "estimated_bytes": needed,
            "models": [{"label": label, "spec": spec_to_dict(r.spec), "input_size": r.size, "head": r.head,
                        "batch": r.batch, "precision": r.precision, "channels_last": r.channels_last,
                        "fold_bn": r.fold_bn, "compile": r.compile}
                       for label, r in zip(self.labels, self.requests)],
        }
        message = self._talk_to_worker(process, payload, start)
        return self._make_results(message, estimates)

    def _check_time(self) -> None:
        """Raises LatencyError('time') when the CPU run would, by a pessimistic estimate, outlast its time limit."""
        from analysis.fast_count import count_model
        from analysis.limits import estimate_cpu_seconds

        passes = self.warmup + self.iters + 1  # the extra pass is the worker's memory probe
        seconds = sum(estimate_cpu_seconds(count_model(r.spec, r.size, r.head, 1000, "gap").macs(""), passes * r.batch)
                      for r in self.requests)
        if seconds > self.timeout:
            raise LatencyError("time", f"refused: the run would take about {seconds:,.0f} s on this CPU, over its "
                                       f"{self.timeout:g} s time limit; lower the iterations, batch or input size, or "
                                       "raise the time limit")

    def _spawn(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.setdefault("PYTHONUNBUFFERED", "1")
        return subprocess.Popen([sys.executable, "-m", "analysis.latency_worker"], cwd=str(ROOT), env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)

    def _talk_to_worker(self, process: subprocess.Popen, payload: dict, start: float) -> dict:
        """Sends the payload, then follows the worker's events until its result; `start` is when it was spawned
        (the time limit counts from there)."""
        self._set_progress("starting", message="starting the worker process")
        deadline = start + self.timeout
        events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_lines, args=(process.stdout, events.put), daemon=True).start()
        threading.Thread(target=self._read_lines, args=(process.stderr, self._stderr_tail.append),
                         daemon=True).start()
        try:
            process.stdin.write(json.dumps(payload))
            process.stdin.close()
        except OSError:
            pass  # the worker died at once; reported below from its exit status
        while True:
            if self._cancel.is_set():
                raise LatencyError("cancelled", "latency run cancelled")
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                progress = self.progress()
                where = _PHASE_WORDS.get(progress.phase, f"in {progress.phase}") + (
                    f" ({progress.done}/{progress.total})" if progress.total else "")
                raise LatencyError("timeout", f"timed out after {self.timeout:g} s {where}; raise the time limit or "
                                              "lower iterations, batch or input size")
            try:
                line = events.get(timeout=min(remaining, 0.05))
            except queue.Empty:
                continue
            if line is None:  # stdout closed: the worker is gone without a result
                raise self._death_error(process)
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            kind = event.get("event")
            if kind == "ready":
                self.phase_times["start_s"] = time.perf_counter() - start
            elif kind == "progress":
                self._set_progress(event["phase"], event["done"], event["total"], event.get("model"))
            elif kind == "result":
                self.phase_times["build_s"] = sum(m["build_s"] for m in event["models"])
                self.phase_times["compile_s"] = sum(m["compile_s"] or 0.0 for m in event["models"])
                self.phase_times.update(event["phases"])
                self.phase_times["total_s"] = time.perf_counter() - start
                return event
            elif kind == "error":
                raise LatencyError(event.get("kind", "error"), event["message"])

    @staticmethod
    def _read_lines(stream, sink) -> None:
        try:
            for line in stream:
                sink(line.rstrip("\n"))
        except (OSError, ValueError):
            pass
        finally:
            sink(None)

    def _death_error(self, process: subprocess.Popen) -> LatencyError:
        try:
            status = process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            status = None
        if self._cancel.is_set():
            return LatencyError("cancelled", "latency run cancelled")
        if status is not None and status < 0:
            name = signal.Signals(-status).name
            hint = " (most likely the system ran out of memory)" if -status == signal.SIGKILL else ""
            return LatencyError("crash", f"the latency worker was killed by {name}{hint}")
        tail = [line for line in self._stderr_tail if line]
        detail = f": {tail[-1][:200]}" if tail else ""
        return LatencyError("crash", f"the latency worker exited with status {status} without a result{detail}")

    def _stop_worker(self) -> None:
        with self._lock:
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

    def _make_results(self, message: dict, estimates: list[int]) -> list[LatencyResult]:
        environment = message["environment"]
        self.run_order = [self.labels[index] for index in message["order"]]
        created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        results = []
        for request, figures, estimate in zip(self.requests, message["models"], estimates):
            samples = figures["samples_ms"]
            median = _percentile(samples, 50)
            results.append(LatencyResult(
                label=figures["label"], spec_name=request.spec.name, spec_hash=spec_hash(request.spec),
                input_size=request.size, head=request.head, batch=request.batch, device=self.device,
                device_name=environment["device_name"], precision=request.precision,
                dtype=_dtype_name(request.precision),
                memory_format="channels_last" if request.channels_last else "contiguous",
                fold_bn=request.fold_bn, compiled=request.compile, threads=environment["threads"],
                iterations=len(samples), warmup=self.warmup, median_ms=median, p10_ms=_percentile(samples, 10),
                p90_ms=_percentile(samples, 90), mean_ms=float(np.mean(samples)), min_ms=float(np.min(samples)),
                throughput=request.batch / (median / 1e3),
                peak_memory_bytes=figures["weight_bytes"] + figures["activation_bytes"],
                weight_bytes=figures["weight_bytes"], activation_bytes=figures["activation_bytes"],
                estimated_memory_bytes=estimate, build_s=figures["build_s"], compile_s=figures["compile_s"],
                bn_folded=figures["bn_folded"], bn_remaining=figures["bn_remaining"], ratio_to_first=1.0,
                torch_version=environment["torch_version"], environment=environment, run_id=self.run_id,
                created_at=created_at, samples_ms=samples))
        for result in results:
            result.ratio_to_first = result.median_ms / results[0].median_ms
        if self.history:
            self._set_progress("store", message="saving to history")
            from analysis.history import store_results

            try:
                ids = store_results(results, self.history_path)
                results = [replace(result, history_id=id_) for result, id_ in zip(results, ids)]
            except Exception as error:  # noqa: BLE001 - figures are still valid without the history row
                self.history_error = f"history not saved: {type(error).__name__}: {error}".splitlines()[0]
        return results


def start_latency_job(requests: list[LatencyRequest], *, device: str = "auto", threads: int | None = None,
                      iters: int = DEFAULT_ITERS, warmup: int = DEFAULT_WARMUP, timeout: float = DEFAULT_TIMEOUT_S,
                      memory_limit_bytes: int | None = None, history: bool = True,
                      history_path: str | Path | None = None) -> LatencyJob:
    """Starts timing `requests` (interleaved, in one worker process) and returns the running LatencyJob at once.

    device: 'auto' (a CUDA GPU when present, else the CPU), 'cpu' or 'cuda'. threads: CPU threads of the worker
    (default: torch's default, one per core). iters timed calls per model after `warmup` untimed ones. timeout:
    seconds for the whole run, worker start included. memory_limit_bytes caps what the run may use besides the
    device's own limit (default: SPINESCOPE_MAX_MEMORY_MIB when set, see `analysis.limits`). history: store
    results in `history_path` (default: data_dir()/history.sqlite).
    Invalid options raise LatencyError('invalid') here; everything else is reported by `result()`.
    """
    from analysis.limits import ResourceLimitError, max_memory_bytes

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
    return LatencyJob(requests, resolved, threads, iters, warmup, timeout, memory_limit_bytes, history,
                      history_path)


def wait_for(job: LatencyJob, on_progress=None) -> list[LatencyResult]:
    """Waits for `job`, calling `on_progress(Progress)` whenever the progress changes; cancels the job on
    Ctrl-C. Returns its results; raises LatencyError with a one-line message."""
    last = None
    try:
        while not job.done():
            job._finished.wait(0.1)
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


def run_latency(requests: list[LatencyRequest], *, on_progress=None, **options) -> list[LatencyResult]:
    """Blocking form of `start_latency_job` (same options). `on_progress(Progress)` is called whenever the
    progress changes. Returns the results in request order; raises LatencyError with a one-line message."""
    return wait_for(start_latency_job(requests, **options), on_progress)
