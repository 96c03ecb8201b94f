"""fvcore's numbers without running anything: params and operator counts of every module, summed over the
structure (`spinenet.describe`) with the formula of fvcore's handle for each operator (fvcore/nn/jit_handles.py),
which is each entry's `counted` and `uncounted` in `spinenet.operators`:

- conv (aten::_convolution): batch x prod(weight shape) x output height x width (bias not counted);
- batch_norm (eval): 2 x input elements; upsample_nearest2d: output elements;
  adaptive_avg_pool2d: input elements; linear: input elements x output features.

Operators fvcore has no handle for are listed by their JIT name and the number of times they run
(`aten::add`, `aten::add_` and `aten::silu_` (in place), `aten::max_pool2d`, `aten::pad`, `aten::mean`,
`aten::sigmoid`, `aten::mul`); the ones it ignores
(relu, stack, cat, flatten, ...) are left out, as fvcore does. Counts are attributed the way fvcore's
`by_module_and_operator()` does: an operator belongs to the module whose forward ran it (the Call's layer) and to
every module whose name is a prefix of that module's name; "" is the whole model. Calls in dead code (`live`
False: their results reach no output, so fvcore's trace drops them) count 0, while their modules' params count.

No tensor is created and torch is not imported. Exactness against fvcore's trace of the real module is what
tests/counting/test_fast_count.py checks.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from spinescope.spinenet.describe import describe, describe_block_group
from spinescope.spinenet.operators import Call, layer_params, operator
from spinescope.spinenet.registry import NO_HEAD
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.structure import Layer
from spinescope.spinenet.input_size import InputSize

# Operators whose counts are multiply-adds (the paper's "FLOPs"); the others are reported apart.
MAC_OPS = frozenset({"conv", "linear", "addmm", "matmul", "bmm", "einsum"})


@dataclass(frozen=True)
class ModelCounts:
    """Per-module statistics of one model at one input size (batch 1), as fvcore reports them.

    ops: module name -> {operator: count}; conv and linear counts are multiply-adds, the others fvcore's units.
    uncounted: module name -> {JIT operator name: times run} for operators fvcore cannot count.
    params: module name -> trainable parameters of the module and its submodules.
    Every module of the model has an entry in all three ("" is the whole model). Read-only.
    """

    ops: Mapping[str, Mapping[str, int]]
    uncounted: Mapping[str, Mapping[str, int]]
    params: Mapping[str, int]

    def macs(self, module: str = "") -> int:
        """Returns the multiply-adds of convolutions and linear layers in `module` (0 for an unknown name)."""
        return sum(count for op, count in self.ops.get(module, {}).items() if op in MAC_OPS)


def _add(table: dict, op: str, count: int) -> None:
    if count:  # fvcore adds Counters, which drop zero counts
        table[op] = table.get(op, 0) + count


def call_counts(layer: Layer, call: Call) -> tuple[dict[str, int], dict[str, int]]:
    """Returns ({fvcore operator: count}, {uncounted JIT operator: times}) of one call of `layer`."""
    rule = operator(call.op)
    return rule.counted(layer.attrs, call), rule.uncounted(layer.attrs, call)


def count_layers(root: Layer) -> ModelCounts:
    """Returns the ModelCounts of the tree under `root`, names relative to it ("" is `root`)."""
    prefix = len(root.name) + 1 if root.name else 0
    layers = list(root.walk())
    names = [layer.name[prefix:] for layer in layers]
    params, ops, uncounted = {}, {}, {}
    for name, layer in zip(names, layers):
        params[name] = layer_params(layer.kind, layer.attrs)
        own_ops, own_uncounted = {}, {}
        for call in layer.calls:
            if call.live:
                counted, other = call_counts(layer, call)
                for op, count in counted.items():
                    _add(own_ops, op, count)
                for op, count in other.items():
                    _add(own_uncounted, op, count)
        ops[name], uncounted[name] = own_ops, own_uncounted
    # Roll every module's own figures up into its ancestors (children come after their parents).
    for name in reversed(names):
        if name:
            parent = name.rpartition(".")[0]
            params[parent] += params[name]
            for table in (ops, uncounted):
                for op, count in table[name].items():
                    _add(table[parent], op, count)
    return ModelCounts(*(MappingProxyType({name: MappingProxyType(counts) for name, counts in table.items()})
                         for table in (ops, uncounted)), MappingProxyType(params))


_counts_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Structure -> ModelCounts
_cache_lock = threading.Lock()  # the app counts from several sessions' threads at once


def count_model(spec: Spec, input_size: InputSize | None = None, head: str = NO_HEAD, num_classes: int = 1000,
                pooling: str = "gap") -> ModelCounts:
    """Returns fvcore's per-module counts and params for `build_model(spec, head, input_size, ...)` run on a
    1 x 3 x input_size x input_size input, without building or running it (`num_classes` and `pooling` are the
    classification head's). Cached with the structure (read-only)."""
    structure = describe(spec, input_size, head, num_classes=num_classes, pooling=pooling)
    with _cache_lock:
        counts = _counts_cache.get(structure)
    if counts is None:
        counts = count_layers(structure.root)
        with _cache_lock:
            _counts_cache[structure] = counts
    return counts


def clear_cache() -> None:
    """Empties the caches of `count_model` and of the structures (for benchmarks that time the uncached path)."""
    from spinescope.spinenet.describe import clear_cache as clear_structures

    with _cache_lock:
        _counts_cache.clear()
    clear_structures()


def count_differences(first: ModelCounts, second: ModelCounts, names=("fast", "fvcore"), limit: int = 50) -> list[str]:
    """Returns one line per difference between two ModelCounts (module missing, operator count, uncounted
    operator, params); [] when they agree exactly. At most `limit` lines, the last one saying how many more."""
    lines = []
    a, b = names
    for module in sorted(first.params.keys() | second.params.keys()):
        label = module or "(model)"
        if module not in first.params or module not in second.params:
            lines.append(f"{label}: module only in {a if module in first.params else b}")
            continue
        if first.params[module] != second.params[module]:
            lines.append(f"{label}: params {a} {first.params[module]} != {b} {second.params[module]}")
        for kind, x, y in (("", first.ops, second.ops), ("uncounted ", first.uncounted, second.uncounted)):
            xs, ys = x.get(module, {}), y.get(module, {})
            for op in sorted(xs.keys() | ys.keys()):
                if xs.get(op, 0) != ys.get(op, 0):
                    lines.append(f"{label}: {kind}{op} {a} {xs.get(op, 0)} != {b} {ys.get(op, 0)}")
    if len(lines) > limit:
        lines = lines[:limit - 1] + [f"... and {len(lines) - limit + 1} more differences"]
    return lines


def count_block_group(block_fn: str, in_channels: int, width: int, side: int, repeats: int = 1, stride: int = 1,
                      activation: str = "relu") -> ModelCounts:
    """Returns fvcore's counts for a standalone block group (`spinenet.describe.describe_block_group`) run on a
    1 x in_channels x side x side input; "" is the group."""
    return count_layers(describe_block_group(block_fn, in_channels, width, side, repeats, stride, activation))
