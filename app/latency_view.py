"""Latency results from the history (analysis.history) for the other tabs; None where nothing was measured."""
from __future__ import annotations

from spinenet.spec import Spec


def latest_latency_ms(spec: Spec, input_size: int) -> float | None:
    """Returns the median latency (ms) of the latest stored run of this architecture at this input size, or None."""
    return None
