"""Resource limits for heavy work (fvcore traces, ONNX export, graph images, training-step measurements, latency
runs), checked before it starts.

Configurable through the environment: SPINESCOPE_MAX_MEMORY_MIB caps the memory a run may use (default: what the
machine has available), SPINESCOPE_MAX_SECONDS caps the estimated time of a piece of work (default 600). A CPU
latency run is refused when its estimated time exceeds its own time limit.

Work on a model is sized in two steps: the weights from the structure (`spinenet.describe`, no torch module), so
that a model whose weights alone do not fit is refused before anything is built; then the peak of live activations
of one forward pass, which the latency guard measures on the `meta` device (no real memory).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from spinescope.analysis.latency.time_estimate import estimate_cpu_seconds
from spinescope.spinenet.input_size import InputSize, size_text

DEFAULT_MAX_SECONDS = 600.0


class ResourceLimitError(ValueError):
    """A request refused before it started because it would exceed a memory or time limit (one-line message)."""


def _positive_env(name: str) -> float | None:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return None
    if any(char.isdigit() and not "0" <= char <= "9" for char in text):  # one rule: ASCII digits only
        raise ResourceLimitError(f"{name}={ascii(text)} has a digit other than 0-9; write the number with the ASCII "
                                 "digits 0-9 or unset it for the default")
    try:
        value = float(text)
    except ValueError:
        raise ResourceLimitError(f"{name}={ascii(text)} is not a number; set a positive number or unset it for the "
                                 "default") from None
    if not (value > 0 and math.isfinite(value)):  # inf and nan too: int(inf MiB) would raise OverflowError later
        raise ResourceLimitError(f"{name}={ascii(text)} must be a positive finite number; set one (e.g. "
                                 f"{name}=4096) or unset it for the default")
    return value


def max_memory_bytes() -> int | None:
    """Returns the configured memory cap in bytes (SPINESCOPE_MAX_MEMORY_MIB), or None when not set."""
    mib = _positive_env("SPINESCOPE_MAX_MEMORY_MIB")
    return None if mib is None else int(mib * 2**20)


def max_seconds() -> float:
    """Returns the longest estimated run time allowed, in seconds (SPINESCOPE_MAX_SECONDS, default 600)."""
    return _positive_env("SPINESCOPE_MAX_SECONDS") or DEFAULT_MAX_SECONDS


def byte_text(count: float) -> str:
    """Returns a byte count for a message: GiB from 1 GiB up (one decimal), MiB below (whole)."""
    return f"{count / 2**30:,.1f} GiB" if count >= 2**30 else f"{count / 2**20:,.0f} MiB"


@dataclass(frozen=True)
class Work:
    """How a piece of work on a model is sized: `what` it is (for the message), the copies of the fp32 weights it
    holds at once, a fixed number of bytes besides (the libraries it loads), the forward passes it runs per image
    (a training step counts as three), and what the user can do instead."""

    what: str
    weight_copies: float
    fixed_bytes: int
    passes: int
    instead: str


# Model, exporter's graph, the serialized file, onnx.load's copy, shape inference's copy and the output: measured peak
# growth 750 MiB for SpineNet-49 with RetinaNet at 256 px (109 MiB of weights), 2.7 GiB for SpineNet-190 (484 MiB).
ONNX_EXPORT = Work("an ONNX export", 6, 256 * 2**20, 3, "choose a smaller model or input size")
FVCORE_TRACE = Work("an fvcore trace", 1, 0, 1, "use the fast counter or a smaller input size")
# Its weights are in the training estimate's peak (analysis.memory.estimate); the fixed bytes are the process's.
TRAINING_STEP = Work("a training-step measurement", 0, 256 * 2**20, 6, "lower the batch or input size")
# A graph image is drawn by kaleido's headless Chromium: measured 214 MiB peak and 8 s for SpineNet-190's graph at
# 1400 x 640 px (scale 2) on this 2-core machine; the estimate doubles both and adds the RGBA raster.
CHROMIUM_BYTES = 512 * 2**20
IMAGE_SECONDS = 20.0
# An ONNX file is one protobuf message, which cannot exceed 2 GiB.
ONNX_MAX_BYTES = 2**31 - 1


def weight_bytes(spec, input_size, head: str) -> int:
    """Returns the bytes of the model's parameters and buffers in fp32, counted from its structure (builds nothing)."""
    from spinescope.analysis.memory.estimate import estimate_training_memory

    return estimate_training_memory(spec, input_size, head, device="cpu").weights_bytes


def _refuse_memory(work: Work, spec, input_size, needed: int, parts: str, available: int) -> None:
    raise ResourceLimitError(
        f"refused: {work.what} of {spec.name} at {size_text(input_size)} needs about {byte_text(needed)}, more than "
        f"the {byte_text(available)} available (SPINESCOPE_MAX_MEMORY_MIB): {parts}; {work.instead}")


def _check_time(work: Work, spec, input_size, macs: int, batch: int) -> None:
    seconds = estimate_cpu_seconds(macs, work.passes * batch)
    if seconds > max_seconds():
        raise ResourceLimitError(
            f"refused: {work.what} of {spec.name} at {size_text(input_size)} ({macs / 1e9:,.0f}B MACs) would take "
            f"about {seconds:,.0f} s, over the {max_seconds():,.0f} s limit (SPINESCOPE_MAX_SECONDS); {work.instead}")


def check_work(work: Work, spec, input_size, head: str, macs: int, batch: int = 1) -> int:
    """Raises ResourceLimitError when `work` on `spec` with `head` at `input_size` (`batch` images; `macs` the
    model's multiply-adds per image from the fast counter) would take longer than max_seconds() or need more memory
    than is available or configured. Returns the estimated bytes."""
    from spinescope.analysis.latency.memory_guard import MEMORY_HEADROOM, available_memory_bytes, estimate_memory

    _check_time(work, spec, input_size, macs, batch)
    available = available_memory_bytes("cpu", max_memory_bytes())
    weights = weight_bytes(spec, input_size, head)
    held = int(work.weight_copies * weights) + work.fixed_bytes
    parts = f"{work.weight_copies:g} x {byte_text(weights)} of weights" + (
        f" + {byte_text(work.fixed_bytes)} for the libraries" if work.fixed_bytes else "")
    if held > MEMORY_HEADROOM * available:  # refused before even a meta-device model is made
        _refuse_memory(work, spec, input_size, held, f"{parts}, before any activation", available)
    activations = estimate_memory(spec, input_size, head, batch).activation_bytes
    needed = held + activations
    if needed > MEMORY_HEADROOM * available:
        _refuse_memory(work, spec, input_size, needed, f"{parts} + {byte_text(activations)} of activations",
                       available)
    return needed


def check_fvcore_request(spec, input_size: InputSize, head: str, macs: int) -> None:
    """Raises ResourceLimitError when tracing `spec` with fvcore would need more memory than is available (or
    configured) or longer than max_seconds(); `macs` is the model's multiply-adds from the fast counter."""
    check_work(FVCORE_TRACE, spec, input_size, head, macs)


def check_onnx_export(spec, input_size, head: str, with_weights: bool = True) -> int:
    """Raises ResourceLimitError when exporting `spec` with `head` at `input_size` to ONNX would exceed the memory
    or time limits, or write a file over ONNX's 2 GiB (`with_weights`: the weights go into the file); returns the
    estimated bytes."""
    from spinescope.analysis.counting.fast import count_model

    weights = weight_bytes(spec, input_size, head)
    if with_weights and weights > ONNX_MAX_BYTES:
        raise ResourceLimitError(
            f"refused: an ONNX file of {spec.name} with the {head} head would hold {byte_text(weights)} of weights, "
            "over the 2 GiB an ONNX file can hold; choose a smaller model")
    return check_work(ONNX_EXPORT, spec, input_size, head, count_model(spec, input_size, head).macs(""))


def check_training_step(spec, input_size, head: str = "none", batch: int = 1, optimizer: str = "sgd",
                        precision: str = "fp32", device: str = "cpu") -> int:
    """Raises ResourceLimitError when measuring one training step (analysis.memory.measure) would exceed the memory
    (on the CPU) or time limits, by the structure's training estimate; returns the estimated bytes."""
    from spinescope.analysis.counting.fast import count_model
    from spinescope.analysis.latency.memory_guard import MEMORY_HEADROOM, available_memory_bytes
    from spinescope.analysis.memory.estimate import estimate_training_memory

    work = TRAINING_STEP
    _check_time(work, spec, input_size, count_model(spec, input_size, head).macs(""), batch)
    step = estimate_training_memory(spec, input_size, head, batch, optimizer, precision, device)
    needed = step.peak_bytes + work.fixed_bytes
    available = available_memory_bytes(device, max_memory_bytes())
    if available is not None and needed > MEMORY_HEADROOM * available:
        _refuse_memory(work, spec, input_size, needed, f"{byte_text(step.peak_bytes)} estimated peak of the step + "
                       f"{byte_text(work.fixed_bytes)} for the process", available)
    return needed


def check_image_export(width: int, height: int, scale: float) -> int:
    """Raises ResourceLimitError when rendering a `width` x `height` px graph image at `scale` in headless Chromium
    would exceed the memory or time limits; returns the estimated bytes."""
    from spinescope.analysis.latency.memory_guard import MEMORY_HEADROOM, available_memory_bytes

    if IMAGE_SECONDS > max_seconds():
        raise ResourceLimitError(
            f"refused: a graph image takes about {IMAGE_SECONDS:,.0f} s in headless Chromium, over the "
            f"{max_seconds():g} s limit (SPINESCOPE_MAX_SECONDS); download the interactive HTML instead")
    needed = CHROMIUM_BYTES + int(width * height * scale**2 * 4)
    available = available_memory_bytes("cpu", max_memory_bytes())
    if needed > MEMORY_HEADROOM * available:
        raise ResourceLimitError(
            f"refused: a {width} x {height} px graph image needs about {byte_text(needed)} (headless Chromium), "
            f"more than the {byte_text(available)} available (SPINESCOPE_MAX_MEMORY_MIB); download the interactive "
            "HTML instead")
    return needed
