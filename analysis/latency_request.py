"""What a latency run asks for and what it returns: requests, results, progress, errors, option checks.

Times are milliseconds, throughput images per second, memory bytes. This module does not import torch at load
time (the app and the history read these types without it).
"""
from __future__ import annotations

import collections
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from spinenet.spec import Spec
from spinenet.validate import LIMITS

DEVICES = ("auto", "cpu", "cuda")
HEADS = ("none", "retinanet", "classification")  # as spinenet.build.HEADS, without importing torch
PRECISIONS = ("fp32", "fp16", "bf16")
MAX_BATCH = 4096
MAX_ITERS = 100_000
DEFAULT_ITERS = 20
DEFAULT_WARMUP = 3
DEFAULT_TIMEOUT_S = 600.0


class LatencyError(Exception):
    """A latency run that could not produce figures. `kind`: invalid, memory or time (refused before starting), oom,
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


def check_run_options(iters: int, warmup: int, threads: int | None, timeout: float) -> None:
    """Raises LatencyError('invalid') with one line if a run-wide option is out of range."""
    if not 1 <= iters <= MAX_ITERS:
        raise LatencyError("invalid", f"iterations {iters} out of range [1, {MAX_ITERS}]")
    if not 0 <= warmup <= MAX_ITERS:
        raise LatencyError("invalid", f"warm-up iterations {warmup} out of range [0, {MAX_ITERS}]")
    if threads is not None and not 1 <= threads <= 1024:
        raise LatencyError("invalid", f"threads {threads} out of range [1, 1024]")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise LatencyError("invalid", f"time limit must be a positive number of seconds, got {timeout}")


def unique_labels(requests: list[LatencyRequest]) -> list[str]:
    """Unique labels: the given label or the spec's name, with '@size' where sizes differ and '#n' for repeats."""
    base = [r.label or r.spec.name for r in requests]
    sizes_differ = len({r.size for r in requests}) > 1
    base = [b if (r.label or not sizes_differ) else f"{b}@{r.size}" for b, r in zip(base, requests)]
    counts, labels = collections.Counter(), []
    for label in base:
        counts[label] += 1
        labels.append(label if counts[label] == 1 else f"{label}#{counts[label]}")
    return labels
