"""Number formatting with the units spelled out: params in millions, MACs and FLOPs in billions (B)."""
from __future__ import annotations

from spinescope.analysis.comparison.report import billions, millions  # noqa: F401 - re-exported for the app


def signed_millions(count: float) -> str:
    return f"{count / 1e6:+.2f}M"


def signed_billions(count: float) -> str:
    return f"{count / 1e9:+.2f}B"


def percent_change(new: float, old: float) -> str:
    """Returns the relative change from `old` to `new`, e.g. '+3.1%' ('n/a' when old is 0)."""
    return "n/a" if not old else f"{100 * (new - old) / old:+.1f}%"


def ratio(value: float | None, reference: float | None) -> str:
    """Returns value / reference as e.g. '0.88x' ('n/a' when either is missing or the reference is 0)."""
    return "n/a" if not value or not reference else f"{value / reference:.2f}x"
