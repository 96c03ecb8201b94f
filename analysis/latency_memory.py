"""Moved to `analysis.latency.memory_guard`. Kept only because `analysis/limits.py` (edited elsewhere) imports it
from here; remove it once that import reads `analysis.latency.memory_guard`."""
from analysis.latency.memory_guard import (ACTIVATION_BYTES, MEMORY_HEADROOM, MemoryEstimate,  # noqa: F401
                                           available_memory_bytes, check_memory, estimate_memory,
                                           estimate_run_bytes, peak_activation_bytes)
