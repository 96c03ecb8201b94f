"""Exact params and MACs of a space's candidates in a fraction of a millisecond: the fast counter's own figures
(`analysis.counting.fast.count_model`), remembered per part and summed.

A candidate's count is the sum over its parts, each a module of the model: the stem conv, the stem blocks, each
block's two resampling connections and its block group, each endpoint conv (the head is counted apart). At one input
size and scaling, a part's params and MACs depend only on what the part is: a connection on its parent's level and
type (or which stem block) and its block's level and type, a block group on its level and type, an endpoint on its
output block's level and type, and whether the part is live
(a part whose output reaches no output level counts 0 MACs, as in fvcore's trace; its params still count). A
candidate whose parts were all seen before is counted from memory after its layout says which parts are live
(`spinenet.layout`); any other is counted by `count_model` and its parts remembered. `tests/search` checks the sum
against `count_model` and fvcore.
"""
from __future__ import annotations

import threading

from spinescope.spinenet.input_size import InputSize
from spinescope.spinenet.layout import live_nodes, resolve
from spinescope.spinenet.spec import STEM_IDS, Spec

_CACHES: dict = {}
_LOCK = threading.Lock()


def _signature(spec: Spec) -> list[tuple[str, str, tuple]]:
    """Returns [(module name, the block it belongs to, what decides its counts)] for the parts of a block-list
    spec: the stem conv, each stem block, and per block its two resampling connections, its block group and the
    rest of its module (the fusion's activation: nothing to count, kept so that the parts add up to the block)."""
    by_id = {block.id: block for block in spec.blocks}

    def parent(pid: str) -> tuple:
        return ("stem", pid) if pid in STEM_IDS else (by_id[pid].level, by_id[pid].block_fn)

    parts = [("backbone.stem_conv", STEM_IDS[0], ("stem_conv",))]
    parts += [(f"backbone.blocks.{stem}", stem, ("stem", stem)) for stem in STEM_IDS]
    for block in spec.blocks:
        name, target = f"backbone.blocks.{block.id}", (block.level, block.block_fn)
        parts += [(f"{name}.resample.{k}", block.id, ("edge", parent(p), target)) for k, p in enumerate(block.parents)]
        parts += [(f"{name}.group", block.id, ("group", target)), (name, block.id, ("block_rest", target))]
        if block.is_output and spec.min_level <= block.level <= spec.max_level:
            parts.append((f"backbone.endpoints.P{block.level}", block.id, ("endpoint", target)))
    return parts


def live_blocks(spec: Spec, input_size: InputSize) -> frozenset:
    """Returns the ids of the graph nodes whose output reaches an output level (after the reference's 0-outdegree
    merges), from the layout alone (cached with the layout)."""
    return frozenset(live_nodes(resolve(spec, input_size)))


class CostCache:
    """Remembered part counts for specs of one scaling, activation, levels and input size (backbone only)."""

    def __init__(self, input_size: InputSize):
        self.input_size = input_size
        self.parts: dict[tuple, tuple[int, int]] = {}  # (signature, live) -> (params, MACs)
        self.rest: tuple[int, int] | None = None  # the backbone's own figures outside its parts (0, 0 in practice)
        self.hits = self.misses = 0

    def count(self, spec: Spec) -> tuple[int, int]:
        """Returns (params, MACs) of the backbone of `spec` at this cache's input size, batch 1."""
        parts = _signature(spec)
        live = live_blocks(spec, self.input_size)
        keys = [(key, owner in live) for _, owner, key in parts]
        found = [self.parts.get(key) for key in keys]
        if self.rest is not None and None not in found:
            self.hits += 1
            return (sum(p for p, _ in found) + self.rest[0], sum(m for _, m in found) + self.rest[1])
        self.misses += 1
        from spinescope.analysis.counting.fast import count_model

        counts = count_model(spec, self.input_size)
        values = {name: [counts.params.get(name, 0), counts.macs(name)] for name, _, _ in parts}
        for name, _, key in parts:
            if key[0] == "block_rest":  # the block's module less its resampling and group
                for sub in (f"{name}.resample.0", f"{name}.resample.1", f"{name}.group"):
                    values[name][0] -= values[sub][0]
                    values[name][1] -= values[sub][1]
        for (name, _, _), key in zip(parts, keys):
            self.parts[key] = tuple(values[name])
        total = (counts.params["backbone"], counts.macs("backbone"))
        self.rest = (total[0] - sum(v[0] for v in values.values()), total[1] - sum(v[1] for v in values.values()))
        return total


def cost_cache(spec: Spec, input_size: InputSize) -> CostCache:
    """Returns the shared CostCache for specs with `spec`'s scaling, activation and levels at `input_size`."""
    key = (spec.family, spec.scaling, spec.activation, spec.min_level, spec.max_level, input_size)
    with _LOCK:
        if key not in _CACHES:
            _CACHES[key] = CostCache(input_size)
        return _CACHES[key]


def clear_costs() -> None:
    """Forgets every remembered part (for benchmarks that time a cold start)."""
    with _LOCK:
        _CACHES.clear()
