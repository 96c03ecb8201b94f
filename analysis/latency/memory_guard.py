"""Refusals before a latency run starts: the memory it will need, estimated before anything real is allocated,
and (on the CPU) the time it will take.

Weights: the model built on the `meta` device, parameters and buffers counted exactly. Activations: one forward
pass on the `meta` device under a dispatch mode that adds up every tensor an operator creates and subtracts it
when the tensor dies, so the peak of live bytes is the eager forward pass's peak exactly as the code runs it
(which tensors a SpineNet keeps alive depends on its block graph; no formula over the layout gets that right).
Allocator rounding and library workspaces are not included; on the CPU the estimate is within a few percent of
the measured peak RSS growth (see tests/latency/test_memory_guard.py). The time estimate is a pessimistic
MACs / speed figure (`analysis.latency.time_estimate.estimate_cpu_seconds`).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from spinescope.analysis.latency.errors import LatencyError
from spinescope.analysis.latency.request import LatencyRequest
from spinescope.spinenet.build import build_model
from spinescope.spinenet.input_size import InputSize, hw
from spinescope.spinenet.spec import Spec

# A run is refused when its estimate exceeds this share of the memory available (the rest is slack for allocator
# rounding, library workspaces and everything else on the machine).
MEMORY_HEADROOM = 0.9
# Bytes per activation element in each precision (autocast runs convolutions in half precision).
ACTIVATION_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated bytes for one model: weights (parameters and buffers, fp32), the half-precision weight copies
    autocast keeps, and the peak of live activations in one forward pass of the whole batch."""

    weight_bytes: int
    autocast_copy_bytes: int
    activation_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.autocast_copy_bytes + self.activation_bytes


class _LiveBytes(TorchDispatchMode):
    """Tracks the bytes of tensors created by operators that are still alive, and their peak."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0

    def _release(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        returns = func._schema.returns
        for index, tensor in enumerate(tree_flatten(out)[0]):
            if not isinstance(tensor, torch.Tensor):
                continue
            # Views and in-place results share a storage that is already counted.
            if index < len(returns) and returns[index].alias_info is not None:
                continue
            nbytes = tensor.untyped_storage().nbytes()
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            weakref.finalize(tensor, self._release, nbytes)
        return out


@lru_cache(maxsize=64)
def _weights(spec: Spec, head: str, input_size: InputSize) -> tuple[int, int]:
    """(bytes of parameters and buffers, number of conv/linear weight elements) of the model in fp32. The input
    size matters: where feature maps collapse to one pixel, resampling convs are not built."""
    model = build_model(spec, head, input_size, device="meta")
    weight_bytes = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    matmul_elements = sum(m.weight.numel() for m in model.modules()
                          if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    return weight_bytes, matmul_elements


def peak_activation_bytes(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """Returns the peak bytes of live tensors (the input included, weights not) during one forward pass of
    `model` on a float32 input of `input_shape`, run on the `meta` device (`model` must be on `meta`)."""
    tracker = _LiveBytes()
    with torch.inference_mode(), tracker:
        images = torch.empty(*input_shape, device="meta")
        outputs = model(images)
        del outputs, images
    return tracker.peak


@lru_cache(maxsize=64)
def _activation_peak(spec: Spec, head: str, input_size: InputSize, batch: int) -> int:
    model = build_model(spec, head, input_size, device="meta")
    return peak_activation_bytes(model, (batch, 3, *hw(input_size)))


def estimate_memory(spec: Spec, input_size: InputSize | None = None, head: str = "none", batch: int = 1,
                    precision: str = "fp32") -> MemoryEstimate:
    """Returns the estimated memory (bytes) of a latency run of `spec` with `head` at `input_size` pixels (default:
    the spec's), `batch` images, `precision` fp32/fp16/bf16. Allocates nothing real: everything runs on `meta`."""
    input_size = input_size or spec.input_size
    weight_bytes, matmul_elements = _weights(spec, head, input_size)
    activation_fp32 = _activation_peak(spec, head, input_size, batch)
    half = precision in ("fp16", "bf16")
    return MemoryEstimate(
        weight_bytes=weight_bytes,
        autocast_copy_bytes=2 * matmul_elements if half else 0,
        activation_bytes=activation_fp32 * ACTIVATION_BYTES[precision] // 4,
    )


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


def check_time(requests: list[LatencyRequest], iters: int, warmup: int, timeout: float) -> None:
    """Raises LatencyError('time') when a CPU run of `requests` (`warmup` + `iters` passes each, plus the worker's
    memory probe) would, by a pessimistic estimate, outlast its `timeout` seconds."""
    from spinescope.analysis.counting.fast import count_model
    from spinescope.analysis.latency.time_estimate import estimate_cpu_seconds

    passes = warmup + iters + 1  # the extra pass is the worker's memory probe
    seconds = sum(estimate_cpu_seconds(count_model(r.spec, r.size, r.head, 1000, "gap").macs(""), passes * r.batch)
                  for r in requests)
    if seconds > timeout:
        raise LatencyError("time", f"refused: the run would take about {seconds:,.0f} s on this CPU, over its "
                                   f"{timeout:g} s time limit; lower the iterations, batch or input size, or "
                                   "raise the time limit")
