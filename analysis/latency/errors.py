"""The one error every part of a latency run raises to its caller."""
from __future__ import annotations


class LatencyError(Exception):
    """A latency run that could not produce figures. `kind`: invalid, memory or time (refused before starting), oom,
    crash, timeout, cancelled or error. str(error) is one line meant for the user."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
