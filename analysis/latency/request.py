"""What a latency run asks for: requests, run-wide options and their checks, the device, and the payload sent to
the worker process.

This module does not import torch at load time (the app reads these types without it).
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from functools import lru_cache

from spinescope.analysis.latency.errors import LatencyError
from spinescope.spinenet.input_size import InputSize, normalize, sides_within, size_label, size_to_json
from spinescope.spinenet.registry import head_names
from spinescope.spinenet.spec import Spec, spec_to_dict
from spinescope.spinenet.validate import LIMITS

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "fp16", "bf16")
MAX_BATCH = 4096
MAX_ITERS = 100_000
DEFAULT_ITERS = 20
DEFAULT_WARMUP = 3
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class LatencyRequest:
    """One model to time: `spec` with `head` at `input_size` (default: the spec's; a side or (height, width),
    pixels), `batch` images,
    `precision` fp32 / fp16 (GPU autocast) / bf16 (autocast), optional channels_last memory format, batch norm
    folded into the convolutions, torch.compile. `label` names it in the output (default: the spec's name)."""

    spec: Spec
    input_size: InputSize | None = None
    head: str = "none"
    batch: int = 1
    precision: str = "fp32"
    channels_last: bool = False
    fold_bn: bool = False
    compile: bool = False
    label: str | None = None

    @property
    def size(self) -> InputSize:
        """The input size: an int side when square, else (height, width)."""
        return normalize(self.input_size or self.spec.input_size)


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

    from spinescope.analysis.latency.worker import cpu_name

    resolved = resolve_device(device)
    if resolved == "cuda":
        return f"GPU: {torch.cuda.get_device_name(0)}"
    cpu = f"CPU ({cpu_name()}, {torch.get_num_threads()} threads)"
    return f"{cpu}, no GPU found" if not cuda_available() else f"{cpu}; a GPU is available"


def check_request(request: LatencyRequest, device: str) -> None:
    """Raises LatencyError('invalid') with one line if an option is out of range or unsupported on `device`."""
    name = request.label or request.spec.name
    low, high = LIMITS["min_input_size"], LIMITS["max_input_size"]
    if request.head not in head_names():
        raise LatencyError("invalid", f"{name}: unknown head {request.head!r}; use one of {', '.join(head_names())}")
    if not sides_within(request.size, low, high):
        raise LatencyError("invalid", f"{name}: input size {size_label(request.size)} is out of range [{low}, {high}]")
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


def check_per_block(requests: list[LatencyRequest]) -> None:
    """Raises LatencyError('invalid') when per-block timing is asked for a compiled model (hooks on the modules
    of a compiled graph would split or bypass it)."""
    for request in requests:
        if request.compile:
            raise LatencyError("invalid", f"{request.label or request.spec.name}: per-block timing cannot be "
                                          "combined with --compile; drop one of them")


def unique_labels(requests: list[LatencyRequest]) -> list[str]:
    """Unique labels: the given label or the spec's name, with '@size' where sizes differ and '#n' for repeats."""
    base = [r.label or r.spec.name for r in requests]
    sizes_differ = len({r.size for r in requests}) > 1
    base = [b if (r.label or not sizes_differ) else f"{b}@{size_label(r.size)}" for b, r in zip(base, requests)]
    counts, labels = collections.Counter(), []
    for label in base:
        counts[label] += 1
        labels.append(label if counts[label] == 1 else f"{label}#{counts[label]}")
    return labels


def worker_payload(requests: list[LatencyRequest], labels: list[str], *, device: str, threads: int | None,
                   iters: int, warmup: int, memory_limit_bytes: int | None, memory_headroom: float,
                   estimated_bytes: int, per_block: bool = False) -> dict:
    """Returns the JSON-ready object the worker process reads on its stdin (see `analysis.latency.worker`)."""
    return {
        "device": device, "threads": threads, "iters": iters, "warmup": warmup,
        "memory_limit_bytes": memory_limit_bytes, "memory_headroom": memory_headroom,
        "estimated_bytes": estimated_bytes, "per_block": per_block,
        "models": [{"label": label, "spec": spec_to_dict(r.spec), "input_size": size_to_json(r.size), "head": r.head,
                    "batch": r.batch, "precision": r.precision, "channels_last": r.channels_last,
                    "fold_bn": r.fold_bn, "compile": r.compile}
                   for label, r in zip(labels, requests)],
    }
