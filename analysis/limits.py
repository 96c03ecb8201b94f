"""Resource limits for work that instantiates real models (fvcore traces, latency runs), checked before it starts.

Configurable through the environment: SPINESCOPE_MAX_MEMORY_MIB caps the memory a run may use (default: what the
machine has available), SPINESCOPE_MAX_SECONDS caps the estimated time of an fvcore trace (default 600). A CPU
latency run is refused when its estimated time exceeds its own time limit.
"""
from __future__ import annotations

import math
import os

from spinescope.spinenet.input_size import size_text

DEFAULT_MAX_SECONDS = 600.0
# CPU speed assumed for a forward pass (multiply-adds per second, fp32): the low end of what this 2-core machine
# measured (17-40 GMAC/s), so that estimates err on the long side without refusing runs that would finish.
CPU_MACS_PER_SECOND = 20e9


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


def estimate_cpu_seconds(macs: float, passes: int = 1) -> float:
    """Returns a pessimistic estimate in seconds of `passes` forward passes of `macs` multiply-adds on the CPU."""
    return passes * macs / CPU_MACS_PER_SECOND


def check_fvcore_request(spec, input_size: int, head: str, macs: int) -> None:
    """Raises ResourceLimitError when tracing `spec` with fvcore would need more memory than is available (or
    configured) or longer than max_seconds(); `macs` is the model's multiply-adds from the fast counter."""
    from spinescope.analysis.latency.memory_guard import MEMORY_HEADROOM, available_memory_bytes, estimate_memory

    seconds = estimate_cpu_seconds(macs)
    if seconds > max_seconds():
        raise ResourceLimitError(
            f"refused: an fvcore trace of {spec.name} at {size_text(input_size)} ({macs / 1e9:,.0f}B MACs) would take about "
            f"{seconds:,.0f} s, over the {max_seconds():,.0f} s limit (SPINESCOPE_MAX_SECONDS); use the fast "
            "counter or a smaller input size")
    needed = estimate_memory(spec, input_size, head).total_bytes
    available = available_memory_bytes("cpu", max_memory_bytes())
    if needed > MEMORY_HEADROOM * available:
        raise ResourceLimitError(
            f"refused: an fvcore trace of {spec.name} at {size_text(input_size)} needs about {needed / 2**20:,.0f} MiB, "
            f"more than the {available / 2**20:,.0f} MiB available (SPINESCOPE_MAX_MEMORY_MIB); use the fast "
            "counter or a smaller input size")
