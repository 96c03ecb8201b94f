"""One model view per (spec, input size, head): what an edit shows, derived once.

The app's tabs, the graph and the tables of one edit all read the same view: the structure (`spinenet.describe`),
its layout, the exact per-module counts (`counting.fast`) and their attribution (`Analysis`). A view is cached by
the spec's content hash, its name, the size and the head, and shared by every caller: treat it as read-only.
"""
from __future__ import annotations

from dataclasses import dataclass

from spinescope.analysis.counting.analysis import Analysis, analyze
from spinescope.analysis.counting.fast import ModelCounts, count_model
from spinescope.spinenet.cache import LruCache
from spinescope.spinenet.describe import Structure, describe
from spinescope.spinenet.input_size import InputSize, normalize
from spinescope.spinenet.layout import Layout
from spinescope.spinenet.registry import NO_HEAD
from spinescope.spinenet.spec import Spec, spec_hash

VIEW_CACHE_SIZE = 128


@dataclass(frozen=True)
class ModelView:
    """A spec with one head at one input size: its structure, layout, counts and analysis (batch 1, MACs)."""

    spec: Spec
    input_size: InputSize  # normalized: a side, or (height, width), pixels
    head: str
    structure: Structure
    counts: ModelCounts
    analysis: Analysis

    @property
    def layout(self) -> Layout:
        """The nodes and connections of the backbone at this size (the structure's own)."""
        return self.structure.layout


_views: LruCache[ModelView] = LruCache(VIEW_CACHE_SIZE)  # the app's sessions run in threads of one process


def model_view(spec: Spec, input_size: InputSize | None = None, head: str = NO_HEAD) -> ModelView:
    """Returns the view of `spec` with `head` at `input_size` (default: the spec's), built on first use and then
    shared (read-only)."""
    size = normalize(input_size or spec.input_size)
    return _views.get((spec_hash(spec), spec.name, size, head), lambda: ModelView(
        spec, size, head, describe(spec, size, head), count_model(spec, size, head), analyze(spec, size, head)))


def clear_views() -> None:
    """Empties the cache of `model_view` (for benchmarks that time the uncached path)."""
    _views.clear()
