"""fvcore's numbers without running anything: params and operator counts of every module, derived from shapes.

`count_model` walks the module tree that `spinenet.build.build_model` would create (same module names) and, for
every operator the model's forward pass would run, applies the formula of fvcore's handle for it
(fvcore/nn/jit_handles.py) to the shapes the layout gives:

- conv (aten::_convolution): batch x prod(weight shape) x output height x width (bias not counted);
- batch_norm (eval): 2 x input elements; upsample_nearest2d: output elements;
  adaptive_avg_pool2d: input elements; linear: input elements x output features.

Operators fvcore has no handle for are listed by their JIT name and the number of times they run
(`aten::add`, `aten::max_pool2d`, `aten::pad`, `aten::silu`, `aten::mean`, `aten::sigmoid`, `aten::mul`); the ones
it ignores (relu, stack, cat, flatten, ...) are left out, as fvcore does. Counts are attributed the way fvcore's
`by_module_and_operator()` does ("owner" mode): an operator belongs to the innermost module whose forward ran it
and to every module whose name is a prefix of that module's name; "" is the whole model. Blocks whose output
reaches no output level are dead code: fvcore's trace drops their operators (the JIT graph keeps only what the
outputs depend on), so they count 0 here too, while their params still count.

No tensor is created and torch is not imported: SpineNet-190 with the RetinaNet head at 1280 pixels takes a few
milliseconds. Exactness against fvcore's trace of the real module is what tests/test_fast_count.py checks.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from spinenet.layout import Layout, Node, resolve
from spinenet.spec import MBCONV_EXPAND_RATIO, MBCONV_SE_RATIO, MOBILE_FILTER_SIZE_MAP, Spec, block_width

HEADS = ("none", "retinanet", "classification")
# Operators whose counts are multiply-adds (the paper's "FLOPs"); the others are reported apart.
MAC_OPS = frozenset({"conv", "linear", "addmm", "matmul", "bmm", "einsum"})
SPP_BINS = (1, 2, 4)  # spinenet.heads.ClassificationHead.SPP_BINS (not imported: that would import torch)
CACHE_SIZE = 256


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


class _Recorder:
    """Collects modules (in pre-order: a parent before its children), their own parameters, and operator runs."""

    def __init__(self):
        self.params: dict[str, int] = {}
        self.ops: dict[str, dict[str, int]] = {}
        self.uncounted: dict[str, dict[str, int]] = {}
        self.live = True  # False while walking dead code: its modules exist, its operators are not recorded

    def module(self, name: str, params: int = 0) -> None:
        self.params[name] = params

    def op(self, name: str, op: str, count: int) -> None:
        if self.live and count > 0:  # fvcore adds Counters, which drop zero counts
            ops = self.ops.setdefault(name, {})
            ops[op] = ops.get(op, 0) + count

    def unsupported(self, name: str, op: str, times: int = 1) -> None:
        if self.live and times:
            ops = self.uncounted.setdefault(name, {})
            ops[op] = ops.get(op, 0) + times

    def result(self) -> ModelCounts:
        """Rolls every module's own figures up into all its ancestors (children come after parents)."""
        unknown = (self.ops.keys() | self.uncounted.keys()) - self.params.keys()
        if unknown:
            raise AssertionError(f"operators recorded for modules that do not exist: {sorted(unknown)[:3]}")
        names = list(self.params)
        params = dict(self.params)
        parents = {name: name.rpartition(".")[0] for name in names if name}
        tables = []
        for own in (self.ops, self.uncounted):
            table = {name: {} for name in names}
            for name, counts in own.items():
                table[name].update(counts)
            for name in reversed(names):
                counts = table[name]
                if counts and name:
                    into = table[parents[name]]
                    for op, count in counts.items():
                        into[op] = into.get(op, 0) + count
            tables.append(MappingProxyType({name: MappingProxyType(counts) for name, counts in table.items()}))
        for name in reversed(names):
            if name:
                params[parents[name]] += params[name]
        return ModelCounts(tables[0], tables[1], MappingProxyType(params))


class _Walker:
    """One method per module class of the builders; each registers the module and its submodules and records
    the operators its forward runs. Sides are feature-map heights (= widths: inputs are square)."""

    def __init__(self, recorder: _Recorder):
        self.r = recorder

    # -- layers ---------------------------------------------------------------------------------------------
    def conv(self, name, cin, cout, kernel, stride, side, groups=1, bias=False, padding=None, register=True) -> int:
        padding = kernel // 2 if padding is None else padding
        out = (side + 2 * padding - kernel) // stride + 1
        weights = cout * (cin // groups) * kernel * kernel
        if register:
            self.r.module(name, weights + (cout if bias else 0))
        self.r.op(name, "conv", weights * out * out)
        return out

    def batch_norm(self, name, channels, side, register=True) -> None:
        if register:
            self.r.module(name, 2 * channels)
        self.r.op(name, "batch_norm", 2 * channels * side * side)

    def activation(self, name, activation, register=True) -> None:
        if register:
            self.r.module(name)
        if activation == "swish":
            self.r.unsupported(name, "aten::silu")

    def conv_bn_act(self, name, cin, cout, kernel, side, stride=1, activation="relu", groups=1) -> int:
        self.r.module(name)
        side = self.conv(f"{name}.0", cin, cout, kernel, stride, side, groups)
        self.batch_norm(f"{name}.1", cout, side)
        if activation:
            self.activation(f"{name}.2", activation)
        return side

    def max_pool_same(self, name, side, kernel, stride) -> int:
        """`spinenet.layers.max_pool_same` run inside module `name`: aten::pad then aten::max_pool2d."""
        out = -(-side // stride)
        total = max((out - 1) * stride + kernel - side, 0)
        self.r.unsupported(name, "aten::pad")
        self.r.unsupported(name, "aten::max_pool2d")
        return (side + total - kernel) // stride + 1

    def resize(self, name, channels, side, target) -> int:
        """`spinenet.layers.resize_nearest` run inside module `name` (no operator when already at `target`)."""
        if side != target:
            self.r.op(name, "upsample_nearest2d", channels * target * target)
        return target

    # -- blocks ---------------------------------------------------------------------------------------------
    def bottleneck(self, name, cin, width, stride, activation, side) -> int:
        self.r.module(name)
        out_channels = 4 * width
        inner = self.conv_bn_act(f"{name}.conv1", cin, width, 1, side, activation=activation)
        inner = self.conv_bn_act(f"{name}.conv2", width, width, 3, inner, stride, activation)
        inner = self.conv_bn_act(f"{name}.conv3", width, out_channels, 1, inner, activation=None)
        self.shortcut(f"{name}.shortcut", cin, out_channels, stride, side)
        self.activation(f"{name}.act", activation)
        self.r.unsupported(name, "aten::add")
        return inner

    def residual(self, name, cin, width, stride, activation, side) -> int:
        self.r.module(name)
        inner = self.conv_bn_act(f"{name}.conv1", cin, width, 3, side, stride, activation)
        inner = self.conv_bn_act(f"{name}.conv2", width, width, 3, inner, activation=None)
        self.shortcut(f"{name}.shortcut", cin, width, stride, side)
        self.activation(f"{name}.act", activation)
        self.r.unsupported(name, "aten::add")
        return inner

    def shortcut(self, name, cin, cout, stride, side) -> None:
        if cin != cout or stride != 1:
            self.conv_bn_act(name, cin, cout, 1, side, stride, activation=None)
        else:
            self.r.module(name)  # nn.Identity: no operator

    def mbconv(self, name, cin, width, stride, activation, side) -> int:
        self.r.module(name)
        expanded = cin * MBCONV_EXPAND_RATIO
        if MBCONV_EXPAND_RATIO > 1:
            self.conv_bn_act(f"{name}.expand", cin, expanded, 1, side, activation=activation)
        inner = self.conv_bn_act(f"{name}.depthwise", expanded, expanded, 3, side, stride, activation, expanded)
        if MBCONV_SE_RATIO > 0:
            self.squeeze_excite(f"{name}.se", expanded, max(1, int(cin * MBCONV_SE_RATIO)))
        self.conv_bn_act(f"{name}.project", expanded, width, 1, inner, activation=None)
        if cin == width and stride == 1:
            self.r.unsupported(name, "aten::add")
        return inner

    def squeeze_excite(self, name, channels, reduced) -> None:
        self.r.module(name)
        self.conv(f"{name}.reduce", channels, reduced, 1, 1, 1, bias=True)
        self.conv(f"{name}.expand", reduced, channels, 1, 1, 1, bias=True)
        self.r.module(f"{name}.act")  # always ReLU, which fvcore ignores
        for op in ("aten::mean", "aten::sigmoid", "aten::mul"):
            self.r.unsupported(name, op)

    def block_group(self, name, block_fn, cin, width, repeats, stride, activation, side) -> int:
        self.r.module(name)
        block = {"bottleneck": self.bottleneck, "residual": self.residual, "mbconv": self.mbconv}[block_fn]
        out_channels = 4 * width if block_fn == "bottleneck" else width
        for index in range(repeats):
            side = block(f"{name}.{index}", cin if index == 0 else out_channels, width,
                         stride if index == 0 else 1, activation, side)
        return side

    # -- SpineNet -------------------------------------------------------------------------------------------
    def reference_resample(self, name, parent: Node, target: Node, alpha, activation, plan, side) -> None:
        self.r.module(name)
        parent_width = parent.out_channels / 4 if parent.block_fn == "bottleneck" else parent.out_channels
        reduced = int(parent_width * alpha)
        side = self.conv_bn_act(f"{name}.reduce", parent.out_channels, reduced, 1, side, activation=activation)
        if plan.stride2_conv:
            side = self.conv_bn_act(f"{name}.downsample", reduced, reduced, 3, side, 2, activation)
            if plan.pool_stride:
                side = self.max_pool_same(name, side, plan.pool_kernel, plan.pool_stride)
        elif plan.scale > 1:
            side = self.resize(name, reduced, side, side * plan.scale)
        side = self.resize(name, reduced, side, target.size)
        self.conv_bn_act(f"{name}.project", reduced, target.in_channels, 1, side, activation=None)

    def mobile_resample(self, name, parent: Node, target: Node, activation, plan, side) -> None:
        self.r.module(name)
        channels = parent.out_channels
        self.r.module(f"{name}.downsample")
        for index in range(plan.depthwise_convs):
            side = self.conv_bn_act(f"{name}.downsample.{index}", channels, channels, 3, side, 2, activation,
                                    channels)
        if not plan.depthwise_convs and plan.scale > 1:
            side = self.resize(name, channels, side, side * plan.scale)
        side = self.resize(name, channels, side, target.size)
        self.conv_bn_act(f"{name}.project", channels, target.in_channels, 1, side, activation=None)

    def spinenet(self, name, layout: Layout, side) -> dict[str, tuple[int, int]]:
        """SpineNetBackbone; returns {"P3": (channels, side), ...}."""
        spec = layout.spec
        act, repeats = spec.activation, spec.scaling.block_repeats
        mobile = spec.family == "spinenet_mobile"
        self.r.module(name)
        stem = f"{name}.stem_conv"
        if mobile:
            stem_channels = int(MOBILE_FILTER_SIZE_MAP[0] * spec.scaling.filter_size_scale)
            side = self.conv_bn_act(stem, 3, stem_channels, 3, side, 2, act)
            strides = (1, 2)
        else:
            stem_channels = 64
            self.r.module(stem)
            side = self.conv_bn_act(f"{stem}.0", 3, stem_channels, 7, side, 2, act)
            self.r.module(f"{stem}.1")
            side = self.max_pool_same(f"{stem}.1", side, 3, 2)
            strides = (1, 1)
        blocks = f"{name}.blocks"
        self.r.module(blocks)
        stems = [node for node in layout.nodes if node.role == "stem"]
        live = live_nodes(layout)
        sides, in_channels = {}, stem_channels
        for node, stride in zip(stems, strides):
            self.r.live = node.id in live
            side = self.block_group(f"{blocks}.{node.id}", node.block_fn, in_channels, block_width(spec, node.level),
                                    repeats, stride, act, side)
            sides[node.id], in_channels = side, node.out_channels
        nodes = {node.id: node for node in layout.nodes}
        for node in layout.nodes[len(stems):]:
            self.r.live = node.id in live
            block = f"{blocks}.{node.id}"
            self.r.module(block)
            self.r.module(f"{block}.resample")
            edges = layout.edges_into(node.id)
            parents = [edge for edge in edges if edge.kind == "parent"]
            for index, edge in enumerate(parents):
                resample = self.mobile_resample if mobile else self.reference_resample
                extra = () if mobile else (spec.scaling.resample_alpha,)
                resample(f"{block}.resample.{index}", nodes[edge.source], node, *extra, act, edge.plan,
                         sides[edge.source])
            self.r.unsupported(block, "aten::add", len(edges) - 1)
            self.activation(f"{block}.act", act)
            sides[node.id] = self.block_group(f"{block}.group", node.block_fn, node.in_channels,
                                              block_width(spec, node.level), repeats, 1, act, node.size)
        self.r.live = True
        self.r.module(f"{name}.endpoints")
        outputs = {}
        for level in range(spec.min_level, spec.max_level + 1):
            node = next(node for node in layout.nodes if node.output_level == level)
            out = self.conv_bn_act(f"{name}.endpoints.P{level}", node.out_channels,
                                   spec.scaling.endpoints_num_filters, 1, sides[node.id], activation=act)
            outputs[f"P{level}"] = (spec.scaling.endpoints_num_filters, out)
        return outputs

    # -- ResNet-FPN -----------------------------------------------------------------------------------------
    def resnet_fpn(self, name, layout: Layout, side) -> dict[str, tuple[int, int]]:
        width, act = layout.spec.scaling.endpoints_num_filters, layout.spec.activation
        self.r.module(name)
        blocks = f"{name}.blocks"
        self.r.module(blocks)
        stage_sides = {}
        for node in layout.nodes:
            path = f"{blocks}.{node.id}"
            if node.role == "stem":
                self.r.module(path)
                side = self.conv_bn_act(f"{path}.0", 3, 64, 7, side, 2, act)
                self.r.module(f"{path}.1")
                side = self.max_pool_same(f"{path}.1", side, 3, 2)
            elif node.role == "block":
                stride = 2 if node.id.endswith("_0") and node.level > 2 else 1
                side = self.bottleneck(path, node.in_channels, node.out_channels // 4, stride, act, side)
                stage_sides[node.level] = side
            else:
                self.r.module(path)
                if node.level <= 5:
                    self.r.module(f"{path}.lateral", node.in_channels * width + width)
                self.r.module(f"{path}.conv", width * width * 9 + width)
                self.r.module(f"{path}.bn", 2 * width)
        fpn = {level: f"{blocks}.P{level}" for level in range(3, 8)}
        merged = {5: self.conv(f"{fpn[5]}.lateral", layout.node(f"P5").in_channels, width, 1, 1, stage_sides[5],
                               bias=True, register=False)}
        for level in (4, 3):
            lateral = self.conv(f"{fpn[level]}.lateral", layout.node(f"P{level}").in_channels, width, 1, 1,
                                stage_sides[level], bias=True, register=False)
            merged[level] = self.resize(name, width, merged[level + 1], lateral)
            self.r.unsupported(name, "aten::add")
        pre_bn = {level: self.conv(f"{fpn[level]}.conv", width, width, 3, 1, merged[level], bias=True,
                                   register=False) for level in (3, 4, 5)}
        pre_bn[6] = self.conv(f"{fpn[6]}.conv", width, width, 3, 2, pre_bn[5], bias=True, register=False)
        pre_bn[7] = self.conv(f"{fpn[7]}.conv", width, width, 3, 2, pre_bn[6], bias=True, register=False)
        for level in range(3, 8):
            self.batch_norm(f"{fpn[level]}.bn", width, pre_bn[level], register=False)
        return {f"P{level}": (width, pre_bn[level]) for level in range(3, 8)}

    # -- heads ----------------------------------------------------------------------------------------------
    def register_head_conv(self, name, cin, cout, separable) -> None:
        if separable:
            self.r.module(name)
            self.r.module(f"{name}.0", cin * 9)
            self.r.module(f"{name}.1", cin * cout + cout)
        else:
            self.r.module(name, cout * cin * 9 + cout)

    def head_conv(self, name, cin, cout, separable, side) -> int:
        if separable:
            self.conv(f"{name}.0", cin, cin, 3, 1, side, groups=cin, register=False)
            return self.conv(f"{name}.1", cin, cout, 1, 1, side, bias=True, register=False)
        return self.conv(name, cin, cout, 3, 1, side, bias=True, register=False)

    def subnet(self, name, features, num_convs, out_channels, separable, activation) -> None:
        """Subnet: convs shared by every level (registered once, run once per level), per-level BNs."""
        width = next(iter(features.values()))[0]
        self.r.module(name)
        self.r.module(f"{name}.convs")
        for index in range(num_convs):
            self.register_head_conv(f"{name}.convs.{index}", width, width, separable)
        self.r.module(f"{name}.norms")
        for level in features:
            self.r.module(f"{name}.norms.{level}")
            for index in range(num_convs):
                self.r.module(f"{name}.norms.{level}.{index}", 2 * width)
        self.r.module(f"{name}.act")
        self.register_head_conv(f"{name}.predict", width, out_channels, separable)
        for level, (channels, side) in features.items():
            for index in range(num_convs):
                side = self.head_conv(f"{name}.convs.{index}", channels, width, separable, side)
                self.batch_norm(f"{name}.norms.{level}.{index}", width, side, register=False)
                self.activation(f"{name}.act", activation, register=False)
            self.head_conv(f"{name}.predict", width, out_channels, separable, side)

    def retinanet_head(self, name, spec: Spec, features) -> None:
        head = spec.head
        self.r.module(name)
        self.subnet(f"{name}.class_net", features, head.num_convs, head.num_classes * head.num_anchors,
                    head.separable, spec.activation)
        self.subnet(f"{name}.box_net", features, head.num_convs, 4 * head.num_anchors, head.separable,
                    spec.activation)

    def classification_head(self, name, features, num_classes, pooling) -> None:
        width, size = next(iter(features.values()))
        bins = SPP_BINS if pooling == "spp" else (1,)
        self.r.module(name)
        self.r.module(f"{name}.pool")
        for index in range(len(bins)):
            self.r.module(f"{name}.pool.{index}")
        in_features = width * sum(b * b for b in bins)
        self.r.module(f"{name}.fc", in_features * num_classes + num_classes)
        for channels, side in features.values():
            self.resize(name, channels, side, size)
        self.r.unsupported(name, "aten::mean")
        for index in range(len(bins)):
            self.r.op(f"{name}.pool.{index}", "adaptive_avg_pool2d", width * size * size)
        self.r.op(f"{name}.fc", "linear", in_features * num_classes)


def live_nodes(layout: Layout) -> set[str]:
    """Returns the ids of the nodes whose output reaches an output level. The others are dead code: the real
    module runs them, but fvcore's trace drops operators whose results are never used, so they count 0."""
    into: dict[str, list[str]] = {}
    for edge in layout.edges:
        into.setdefault(edge.target, []).append(edge.source)
    stems = [node.id for node in layout.nodes if node.role == "stem"]
    if len(stems) == 2:
        into.setdefault(stems[1], []).append(stems[0])  # a SpineNet stem block feeds the next one directly
    live, pending = set(), [node.id for node in layout.nodes if node.output_level is not None]
    while pending:
        node_id = pending.pop()
        if node_id not in live:
            live.add(node_id)
            pending.extend(into.get(node_id, ()))
    return live


def _count(spec: Spec, input_size: int, head: str, num_classes: int, pooling: str) -> ModelCounts:
    layout = resolve(spec, input_size)
    walker = _Walker(_Recorder())
    walker.r.module("")
    if spec.family == "resnet_fpn":
        features = walker.resnet_fpn("backbone", layout, input_size)
    else:
        features = walker.spinenet("backbone", layout, input_size)
    if head == "retinanet":
        walker.retinanet_head("head", spec, features)
    elif head == "classification":
        walker.classification_head("head", features, num_classes, pooling)
    return walker.r.result()


_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()  # the app analyzes from several sessions' threads at once


def count_model(spec: Spec, input_size: int | None = None, head: str = "none", num_classes: int = 1000,
                pooling: str = "gap") -> ModelCounts:
    """Returns fvcore's per-module counts and params for `build_model(spec, head, input_size, ...)` run on a
    1 x 3 x input_size x input_size input, without building or running it. Results are cached (read-only)."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; use one of {', '.join(HEADS)}")
    if pooling not in ("gap", "spp"):
        raise ValueError(f"unknown pooling {pooling!r}; use gap or spp")
    input_size = input_size or spec.input_size
    key = (spec, input_size, head, num_classes if head == "classification" else None,
           pooling if head == "classification" else None)
    with _cache_lock:
        counts = _cache.get(key)
        if counts is not None:
            _cache.move_to_end(key)
            return counts
    counts = _count(spec, input_size, head, num_classes, pooling)
    with _cache_lock:
        _cache[key] = counts
        if len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return counts


def clear_cache() -> None:
    """Empties the cache of `count_model` (for benchmarks that time the uncached path)."""
    with _cache_lock:
        _cache.clear()


def count_block_group(block_fn: str, in_channels: int, width: int, side: int, repeats: int = 1, stride: int = 1,
                      activation: str = "relu") -> ModelCounts:
    """Returns fvcore's counts for a standalone `spinenet.blocks.BlockGroup(block_fn, in_channels, width, repeats,
    stride, activation)` run on a 1 x in_channels x side x side input; "" is the group."""
    walker = _Walker(_Recorder())
    walker.r.module("")
    walker.block_group("group", block_fn, in_channels, width, repeats, stride, activation, side)
    counts = walker.r.result()
    rename = {name: name.partition(".")[2] for name in counts.params if name}  # "group.0.conv1" -> "0.conv1"
    return ModelCounts(*(MappingProxyType({rename[name]: value for name, value in table.items() if name})
                         for table in (counts.ops, counts.uncounted, counts.params)))


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
