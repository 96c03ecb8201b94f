"""Theoretical receptive fields, effective strides and input-to-output paths of SpineNet and ResNet-FPN.

Reads the layers of the structure (`spinenet.describe`) at one input size (the resampling plans, hence the pooling
kernels, depend on it): every kernel, stride and conv count below comes from there. Conventions:

- Receptive field (pixels, per side) of a feature: the classic recurrence r += (k - 1) * j over every k x k layer on a
  path from the input, j being the stride (pixels of input per pixel of feature map) at that layer's input, and
  the maximum over all paths into the feature ("theoretical": it is not clipped to the image, and padding is
  ignored). Layers counted: the stem's 7x7/2 conv and 3x3/2 max-pool (Mobile: 3x3/2 conv); every 3x3 conv of a
  block's main path (bottleneck 1, residual 2, MBConv depthwise 1, per repeat); in a resampling connection the
  3x3/2 conv and the max-pool (Mobile: each 3x3/2 depthwise conv); in the FPN the 3x3 output convs and the 3x3/2
  convs of P6 and P7. 1x1 convs add nothing; nearest upsampling and resizing keep the receptive field.
- Effective stride of a feature at level l: 2**l pixels (its side is ceil(input / 2**l)); j above uses the
  actual stride of the tensor a layer reads (e.g. 2**(l+1) for a max-pool after a resampling's 3x3/2 conv).
- Paths are counted in weighted layers (convolutions) from the input: the stem conv, the convs of each block's
  main path (bottleneck 3, residual 2, MBConv 3 per repeat; shortcuts and squeeze-excite are side branches and not
  paths), the convs of each resampling connection (reduce 1x1, 3x3/2 if any, project 1x1; Mobile: its depthwise
  convs and the 1x1), nothing for a 0-outdegree merge, the 1x1 endpoint conv (SpineNet) or the FPN's lateral 1x1
  and output 3x3 (ResNet-FPN; the top-down path adds none). The longest path maximises (layers, scale changes),
  the shortest minimises them; remaining ties go to the earlier parent.
- Scale changes: connections between graph nodes along the path whose feature level differs (the stem's own
  downsampling is not counted; in ResNet-FPN a stage's first block and each top-down step count as one).
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from functools import lru_cache

from spinescope.spinenet.describe import Structure, describe
from spinescope.spinenet.input_size import InputSize, is_square, size_to_json
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.geometry import pair
from spinescope.spinenet.operators import operator
from spinescope.spinenet.structure import Layer


@dataclass(frozen=True)
class Path:
    """A path from the input: weighted layers on it, scale changes along it, the graph nodes it visits."""

    layers: int
    scale_changes: int
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class Field:
    """Receptive field (pixels: the larger of its height and width), effective stride (pixels) and extreme paths
    of one node or output; `receptive_field_hw` is (height, width), which differ only where a non-square input
    gives the two axes different pooling."""

    id: str
    level: int
    receptive_field: int
    stride: int
    longest: Path
    shortest: Path
    receptive_field_hw: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class ReceptiveFields:
    """`nodes`: every graph node by id; `outputs`: "P3".."P7" (after the endpoint conv for SpineNet)."""

    name: str
    input_size: InputSize
    nodes: dict[str, Field]
    outputs: dict[str, Field]

    def to_dict(self) -> dict:
        def field(f: Field) -> dict:
            return {"id": f.id, "level": f.level, "receptive_field": f.receptive_field,
                    "receptive_field_hw": list(f.receptive_field_hw), "stride": f.stride,
                    "longest_path": {"layers": f.longest.layers, "scale_changes": f.longest.scale_changes,
                                     "nodes": list(f.longest.nodes)},
                    "shortest_path": {"layers": f.shortest.layers, "scale_changes": f.shortest.scale_changes,
                                      "nodes": list(f.shortest.nodes)}}
        return {"name": self.name, "input_size": size_to_json(self.input_size),
                "nodes": {key: field(value) for key, value in self.nodes.items()},
                "outputs": {key: field(value) for key, value in self.outputs.items()}}


@dataclass(frozen=True)
class _Link:
    """A way into a point: from `source` (None: the input image), adding `growth` pixels of receptive field,
    `layers` weighted layers and `scale_change` (0 or 1)."""

    source: str | None
    growth: int
    layers: int
    scale_change: int


class _Points:
    """Feature maps in computation order, each with its links; `visible` ones are graph nodes (path members)."""

    def __init__(self):
        self.links: dict[str, list[_Link]] = {}
        self.levels: dict[str, int] = {}
        self.visible: dict[str, bool] = {}

    def add(self, point: str, level: int, links: list[_Link], visible: bool = True) -> None:
        self.links[point], self.levels[point], self.visible[point] = links, level, visible

    def solve(self) -> dict[str, tuple[int, tuple, tuple]]:
        """Returns point -> (receptive field, longest (layers, changes, nodes), shortest (...))."""
        solved = {None: (1, (0, 0, ()), (0, 0, ()))}
        for point, links in self.links.items():
            field, longest, shortest = 0, None, None
            for link in links:
                source_field, source_long, source_short = solved[link.source]
                field = max(field, source_field + link.growth)
                extend = (point,) if self.visible[point] else ()
                long = (source_long[0] + link.layers, source_long[1] + link.scale_change, source_long[2] + extend)
                short = (source_short[0] + link.layers, source_short[1] + link.scale_change,
                         source_short[2] + extend)
                if longest is None or long[:2] > longest[:2]:
                    longest = long
                if shortest is None or short[:2] < shortest[:2]:
                    shortest = short
            solved[point] = (field, longest, shortest)
        return solved


def _main_path(layer: Layer):
    """Yields `layer` and its descendants in order, leaving out side branches (shortcuts, squeeze-excite)."""
    if layer.role == "side" or layer.local_name == "shortcut":
        return
    yield layer
    for child in layer.children:
        yield from _main_path(child)


def path_cost(layer: Layer, jump: int, axis: int = 1) -> tuple[int, int, int]:
    """Returns (receptive-field growth in pixels, weighted layers, output jump) of the main path through `layer`
    along `axis` (0: height, 1: width) for an input whose pixels are `jump` input pixels apart. Every k x k conv or
    pooling call adds (k - 1) x jump and multiplies the jump by its stride; side branches (shortcuts,
    squeeze-excite) are not on the path."""
    growth = layers = 0
    for call in sorted((call for sub in _main_path(layer) for call in sub.calls), key=lambda call: call.order):
        step = operator(call.op)
        layers += step.weighted
        if step.window:
            growth += (pair(call.kernel)[axis] - 1) * jump
            jump *= pair(call.stride)[axis]
    return growth, layers, jump


def _points(structure: Structure, axis: int) -> _Points:
    """The feature maps of the backbone, linked the way the layout connects them, each link costed by the
    layers it runs (`path_cost`). Edge kinds: parent (through the block's resampling, then its block group), merge
    (the 0-outdegree rule: straight into the block group), sequential (through the target's own module, or its
    `conv` for an FPN level), lateral and top_down (into an FPN level's sum, which its `conv` then reads).
    Kernels and strides are read along `axis` (0: height, 1: width)."""
    layout = structure.layout
    backbone = structure.layer("backbone")
    blocks = backbone.child("blocks")
    levels = {node.id: node.level for node in layout.nodes}
    points = _Points()

    def link(source, layer, jump_level, scale_change):
        growth, layers, _ = path_cost(layer, 2 ** jump_level, axis)
        return _Link(source, growth, layers, scale_change)

    stems = layout.stems
    first = stems[0]
    stem_conv = backbone.child("stem_conv") if backbone.has_child("stem_conv") else None
    growth, layers, jump = path_cost(stem_conv, 1, axis) if stem_conv else (0, 0, 1)
    block_growth, block_layers, _ = path_cost(blocks.child(first.id), jump, axis)
    points.add(first.id, first.level, [_Link(None, growth + block_growth, layers + block_layers, 0)])
    for before, after in zip(stems, stems[1:]):
        points.add(after.id, after.level, [link(before.id, blocks.child(after.id), before.level,
                                                int(before.level != after.level))])
    for node in layout.nodes[len(stems):]:
        module = blocks.child(node.id)
        edges = layout.edges_into(node.id)
        if node.role == "fpn":
            sums = [link(e.source, module.child("lateral"), levels[e.source], 0) for e in edges
                    if e.kind == "lateral"]
            sums += [_Link(f"{e.source}:sum", 0, 0, 1) for e in edges if e.kind == "top_down"]
            links = [link(e.source, module.child("conv"), levels[e.source], 1) for e in edges
                     if e.kind == "sequential"]
            if sums:
                points.add(f"{node.id}:sum", node.level, sums, visible=False)
                links.append(link(f"{node.id}:sum", module.child("conv"), node.level, 0))
            points.add(node.id, node.level, links)
            continue
        links, parents = [], 0
        for edge in edges:
            change = int(levels[edge.source] != node.level)
            if edge.kind == "parent":
                resample = module.child("resample").children[parents]
                parents += 1
                via = link(edge.source, resample, levels[edge.source], change)
                group = link(None, module.child("group"), node.level, change)
                links.append(_Link(edge.source, via.growth + group.growth, via.layers + group.layers, change))
            elif edge.kind == "merge":
                links.append(link(edge.source, module.child("group"), node.level, change))
            else:  # sequential: the target's own module reads the source
                links.append(link(edge.source, module, levels[edge.source], change))
        points.add(node.id, node.level, links)
    if backbone.has_child("endpoints"):
        endpoints = backbone.child("endpoints")
        for level, node in layout.output_nodes.items():
            points.add(f"P{level}", level, [link(node.id, endpoints.child(f"P{level}"), level, 0)], visible=False)
    return points


@lru_cache(maxsize=256)
def receptive_fields(spec: Spec, input_size: InputSize | None = None) -> ReceptiveFields:
    """Returns the receptive field (pixels), effective stride (pixels) and longest/shortest input paths of every
    graph node and every output P3-P7 of `spec` at `input_size` (default: the spec's; a side or (height, width)).
    See the module docstring for the conventions. Cached; the result is read-only."""
    return fields_of(describe(spec, input_size))


_fields: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Structure -> ReceptiveFields
_fields_lock = threading.Lock()


def fields_of(structure: Structure) -> ReceptiveFields:
    """Returns `receptive_fields` of the backbone of a described model, with or without a head (the counts of an
    edit pass the structure they counted, so the backbone is not described a second time). Cached with the
    structure; read-only."""
    with _fields_lock:
        fields = _fields.get(structure)
    if fields is None:
        fields = _solve(structure)
        with _fields_lock:
            _fields[structure] = fields
    return fields


def _solve(structure: Structure) -> ReceptiveFields:
    spec = structure.spec
    layout = structure.layout
    points = _points(structure, axis=1)
    solved = points.solve()
    solved_h = solved if is_square(layout.input_size) else _points(structure, axis=0).solve()

    def field(point: str, label: str) -> Field:
        rf, longest, shortest = solved[point]
        rf_h = solved_h[point][0]
        level = points.levels[point]
        return Field(label, level, max(rf, rf_h), 2 ** level, Path(*longest), Path(*shortest), (rf_h, rf))

    nodes = {node.id: field(node.id, node.id) for node in layout.nodes}
    outputs = {f"P{level}": field(f"P{level}", f"P{level}") for level in range(spec.min_level, spec.max_level + 1)}
    return ReceptiveFields(spec.name, layout.input_size, nodes, outputs)


def output_receptive_fields(spec: Spec, input_size: InputSize | None = None) -> dict[str, int]:
    """Returns {"P3": pixels, ..., "P7": pixels}: the theoretical receptive field of each output."""
    return {key: value.receptive_field for key, value in receptive_fields(spec, input_size).outputs.items()}
