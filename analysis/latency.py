"""Latency of the real model, measured in an isolated worker process, with progress, cancel and history.

    job = start_latency_job([LatencyRequest(spec_a), LatencyRequest(spec_b)], device="auto", iters=20)
    job.progress()            # Progress(phase='measure', done=12, total=40, ...)
    job.cancel()              # stops the worker; result() then raises LatencyError(kind='cancelled')
    results = job.result()    # list[LatencyResult], in request order; raises LatencyError (one-line message)

`run_latency(...)` does the same and blocks. Several requests in one job are built in one worker and timed
interleaved (A B A B ...), so each median's `ratio_to_first` compares models under the same machine load.
Before the worker starts, the memory the run needs is estimated on the `meta` device
(`analysis.latency_memory`) and the run is refused when it would not fit; a crash, an out-of-memory error or a
time-out of the worker becomes a `LatencyError` with a one-line message. Successful results are stored in the
history database (`analysis.history`). Times are milliseconds, throughput images per second, memory bytes.
"""
from __future__ import annotations

import collections
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np

from spinenet.spec import Spec, spec_hash, spec_to_dict
from spinenet.validate import LIMITS

DEVICES = ("auto", "cpu", "cuda")
HEADS = ("none", "retinanet", "classification")  # as spinenet.build.HEADS; this module imports torch lazily
PRECISIONS = ("fp32", "fp16", "bf16")
MAX_BATCH = 4096
MAX_ITERS = 100_000
DEFAULT_ITERS = 20
DEFAULT_WARMUP = 3
DEFAULT_TIMEOUT_S = 600.0
# A run is refused when its estimate exceeds this share of the memory available (the rest is slack for allocator
# rounding, library workspaces and everything else on the machine).
MEMORY_HEADROOM = 0.9
ROOT = Path(__file__).resolve().parent.parent


class LatencyError(Exception):
    """A latency run that could not produce figures. `kind`: invalid, memory (refused before starting), oom,
    crash, timeout, cancelled or error. str(error) is one line meant for the user."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class LatencyRequest:
    """One model to time: `spec` with `head` at `input_size` pixels (default: the spec's), `batch` images,
    `precision` fp32 / fp16 (GPU autocast) / bf16 (autocast), optional channels_last memory format, batch norm
    folded into the convolutions, torch.compile. `label` names it in the output (default: the spec's name)."""

    spec: Spec
    input_size: int | None = None
    head: str = "none"
    batch: int = 1
    precision: str = "fp32"
    channels_last: bool = False
    fold_bn: bool = False
    compile: bool = False
    label: str | None = None

    @property
    def size(self) -> int:
        return self.input_size or self.spec.input_size


@dataclass
class LatencyResult:
    """Figures for one model of a run. Times in ms over `iterations` timed calls (one call = one forward pass of
    `batch` images); `throughput` in images/s from the median; memory in bytes (`peak_memory_bytes` = weights and
    buffers + the measured growth during one forward pass); `compile_s` is the time of the compiling first call,
    never part of the timings. `ratio_to_first` = this median / the first model's median in the same run."""

    label: str
    spec_name: str
    spec_hash: str
    input_size: int
    head: str
    batch: int
    device: str
    device_name: str
    precision: str
    dtype: str
    memory_format: str
    fold_bn: bool
    compiled: bool
    threads: int
    iterations: int
    warmup: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    throughput: float
    peak_memory_bytes: int
    weight_bytes: int
    activation_bytes: int
    estimated_memory_bytes: int
    build_s: float
    compile_s: float | None
    bn_folded: int
    bn_remaining: int
    ratio_to_first: float
    torch_version: str
    environment: dict
    run_id: str
    created_at: str
    samples_ms: list[float] = field(default_factory=list, repr=False)
    history_id: int | None = None

    @property
    def settings(self) -> dict:
        """The options the figures depend on (what the history compares like with like on)."""
        return {"input_size": self.input_size, "head": self.head, "batch": self.batch, "device": self.device,
                "precision": self.precision, "channels_last": self.memory_format == "channels_last",
                "fold_bn": self.fold_bn, "compile": self.compiled, "threads": self.threads,
                "iterations": self.iterations, "warmup": self.warmup}

    def to_dict(self, samples: bool = False) -> dict:
        """JSON-ready figures; `name` is the label; per-call samples only when `samples`."""
        data = asdict(self)
        data["name"] = data.pop("label")
        data["settings"] = self.settings
        if not samples:
            data.pop("samples_ms")
        return data


@dataclass(frozen=True)
class Progress:
    """Where a job stands. phase: estimate, starting, build, compile, warmup, measure, store, done, failed or
    cancelled; `done` of `total` steps of that phase (timed calls while measuring)."""

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


# ---------------------------------------------------------------------------------------------------------------
# Devices and validation


@lru_cache(maxsize=1)
def cuda_available() -> bool:
    """True when this torch build sees a CUDA GPU (does not create a CUDA context in this process)."""
    import torch

    return torch.cuda.is_available()


def resolve_device(device: str) -> str:
    """Returns 'cpu' or 'cuda' for 'auto', 'cpu' or 'cuda'; raises LatencyError('invalid') for 'cuda' without a
    GPU or an unknown name."""
    if device not in DEVICES:
        raise LatencyError("invalid", f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        import torch

        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise LatencyError("invalid", f"device cuda: no CUDA GPU found (torch {torch.__version__} is {build}); "
                                      "use --device cpu or auto")
    return device


def describe_device(device: str = "auto") -> str:
    """Returns a plain sentence naming the device a run would use, e.g. 'CPU (AMD EPYC, 2 threads), no GPU found'
    or 'GPU: NVIDIA H100 80GB HBM3'."""
    import torch

    from analysis.latency_worker import cpu_name

    resolved = resolve_device(device)
    if resolved == "cuda":
        return f"GPU: {torch.cuda.get_device_name(0)}"
    cpu = f"CPU ({cpu_name()}, {torch.get_num_threads()} threads)"
    return f"{cpu}, no GPU found" if not cuda_available() else f"{cpu}; a GPU is available"


def check_request(request: LatencyRequest, device: str) -> None:
    """Raises LatencyError('invalid') with one line if an option is out of range or unsupported on `device`."""
    name = request.label or request.spec.name
    low, high = LIMITS["min_input_size"], LIMITS["max_input_size"]
    if request.head not in HEADS:
        raise LatencyError("invalid", f"{name}: unknown head {request.head!r}; use one of {', '.join(HEADS)}")
    if not low <= request.size <= high:
        raise LatencyError("invalid", f"{name}: input size {request.size} is out of range [{low}, {high}]")
    if not 1 <= request.batch <= MAX_BATCH:
        raise LatencyError("invalid", f"{name}: batch {request.batch} is out of range [1, {MAX_BATCH}]")
    if request.precision not in PRECISIONS:
        raise LatencyError("invalid", f"{name}: unknown precision {request.precision!r}; use one of "
                                      f"{', '.join(PRECISIONS)}")
    if request.precision == "fp16" and device == "cpu":
        raise LatencyError("invalid", f"{name}: fp16 is measured on a GPU only; on the CPU use bf16 or fp32")


def _check_run_options(iters: int, warmup: int, threads: int | None, timeout: float) -> None:
    if not 1 <= iters <= MAX_ITERS:
        raise LatencyError("invalid", f"iterations {iters} out of range [1, {MAX_ITERS}]")
    if not 0 <= warmup <= MAX_ITERS:
        raise LatencyError("invalid", f"warm-up iterations {warmup} out of range [0, {MAX_ITERS}]")
    if threads is not None and not 1 <= threads <= 1024:
        raise LatencyError("invalid", f"threads {threads} out of range [1, 1024]")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise LatencyError("invalid", f"time limit must be a positive number of seconds, got {timeout}")


def _labels(requests: list[LatencyRequest]) -> list[str]:
    """Unique labels: the given label or the spec's name, with '@size' where sizes differ and '#n' for repeats."""
    base = [r.label or r.spec.name for r in requests]
    sizes_differ = len({r.size for r in requests}) > 1
    base = [b if (r.label or not sizes_differ) else f"{b}@{r.size}" for b, r in zip(base, requests)]
    counts, labels = collections.Counter(), []
    for label in base:
        counts[label] += 1
        labels.append(label if counts[label] == 1 else f"{label}#{counts[label]}")
    return labels


def available_memory_bytes(device: str, memory_limit_bytes: int | None = None) -> int | None:
    """Bytes a run may use on `device`: available RAM for the CPU (None for a GPU: the worker asks the GPU),
    capped by `memory_limit_bytes` when given."""
    if device == "cuda":
        return memory_limit_bytes
    import psutil

    available = psutil.virtual_memory().available
    return available if memory_limit_bytes is None else min(available, memory_limit_bytes)


def estimate_run_bytes(requests: list[LatencyRequest]) -> tuple[int, list[int]]:
    """Returns (bytes the whole run needs, estimated bytes per model). All models stay resident (they are timed
    interleaved) but only one runs at a time: all weights + the largest activation peak."""
    from analysis.latency_memory import estimate_memory

    estimates = [estimate_memory(r.spec, r.size, r.head, r.batch, r.precision) for r in requests]
    resident = sum(e.weight_bytes + e.autocast_copy_bytes for e in estimates)
    return resident + max(e.activation_bytes for e in estimates), [e.total_bytes for e in estimates]


def check_memory(requests: list[LatencyRequest], device: str,
                 memory_limit_bytes: int | None = None) -> tuple[int, list[int]]:
    """Raises LatencyError('memory') when the run's estimate does not fit the device's available memory (or the
    limit); returns (bytes the run needs, estimated bytes per model) as `estimate_run_bytes`."""
    needed, per_model = estimate_run_bytes(requests)
    available = available_memory_bytes(device, memory_limit_bytes)
    if available is not None and needed > MEMORY_HEADROOM * available:
        where = "the configured limit" if memory_limit_bytes is not None and available == memory_limit_bytes \
            else "available RAM"
        raise LatencyError("memory", f"refused: the run needs about {needed / 2**20:,.0f} MiB (weights + "
                                     f"activations) but {where} is {available / 2**20:,.0f} MiB; lower the batch "
                                     "or input size")
    return needed, per_model


# ---------------------------------------------------------------------------------------------------------------
# The job


def _percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples, dtype=float), q))


def _dtype_name(precision: str) -> str:
    return {"fp32": "float32", "fp16": "float16 (autocast)", "bf16": "bfloat16 (autocast)"}[precision]


class LatencyJob:
    """A latency run in a worker process. Thread-safe; poll `progress()`, stop with `cancel()`, wait with
    `result(timeout)`. Create it with `start_latency_job`."""

    def __init__(self, requests: list[LatencyRequest], device: str, threads: int | None, iters: int, warmup: int,
                 timeout: float, memory_limit_bytes: int | None, history: bool, history_path: str | Path | None):
        self.requests = requests
        self.labels = _labels(requests)
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
        # Seconds: estimate_s, start_s (process start and imports), build_s, compile_s, warmup_s, measure_s, total_s
        # (from the worker's start to its result).
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
        started = time.perf_counter()
        self._set_progress("estimate", message="estimating memory")
        needed, estimates = check_memory(self.requests, self.device, self.memory_limit_bytes)
        self.phase_times["estimate_s"] = time.perf_counter() - started
        if self._cancel.is_set():
            raise LatencyError("cancelled", "latency run cancelled")
        payload = {
            "device": self.device, "threads": self.threads, "iters": self.iters, "warmup": self.warmup,
            "memory_limit_bytes": self.memory_limit_bytes, "memory_headroom": MEMORY_HEADROOM,
            "estimated_bytes": needed,
            "models": [{"label": label, "spec": spec_to_dict(r.spec), "input_size": r.size, "head": r.head,
                        "batch": r.batch, "precision": r.precision, "channels_last": r.channels_last,
                        "fold_bn": r.fold_bn, "compile": r.compile}
                       for label, r in zip(self.labels, self.requests)],
        }
        message = self._talk_to_worker(payload)
        return self._make_results(message, estimates)

    def _spawn(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.setdefault("PYTHONUNBUFFERED", "1")
        return subprocess.Popen([sys.executable, "-m", "analysis.latency_worker"], cwd=str(ROOT), env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)

    def _talk_to_worker(self, payload: dict) -> dict:
        self._set_progress("starting", message="starting the worker process")
        start = time.perf_counter()
        deadline = start + self.timeout
        with self._lock:
            if self._cancel.is_set():
                raise LatencyError("cancelled", "latency run cancelled")
            self._process = process = self._spawn()
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
                where = f" while in {progress.phase}" + (
                    f" ({progress.done}/{progress.total})" if progress.total else "")
                raise LatencyError("timeout", f"timed out after {self.timeout:g} s{where}; raise the time limit or "
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
    device's own limit. history: store results in `history_path` (default: data_dir()/history.sqlite).
    Invalid options raise LatencyError('invalid') here; everything else is reported by `result()`.
    """
    requests = list(requests)
    if not requests:
        raise LatencyError("invalid", "no model to measure")
    _check_run_options(iters, warmup, threads, timeout)
    resolved = resolve_device(device)
    for request in requests:
        check_request(request, resolved)
    return LatencyJob(requests, resolved, threads, iters, warmup, timeout, memory_limit_bytes, history,
                      history_path)


def run_latency(requests: list[LatencyRequest], *, on_progress=None, **options) -> list[LatencyResult]:
    """Blocking form of `start_latency_job` (same options). `on_progress(Progress)` is called whenever the
    progress changes. Returns the results in request order; raises LatencyError with a one-line message."""
    job = start_latency_job(requests, **options)
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
    return job.result()
