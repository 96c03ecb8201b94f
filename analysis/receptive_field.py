"""Theoretical receptive fields, effective strides and input-to-output paths of SpineNet and ResNet-FPN.

Walks the real layer sequence the builders create, at one input size (the resampling plans, hence the pooling
kernels, depend on it). Conventions:

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

from dataclasses import dataclass
from functools import lru_cache

from spinenet.layout import Edge, Layout, ResamplePlan, resolve
from spinenet.spec import Spec


@dataclass(frozen=True)
class Path:
    """A path from the input: weighted layers on it, scale changes along it, the graph nodes it visits."""

    layers: int
    scale_changes: int
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class Field:
    """Receptive field (pixels), effective stride (pixels) and extreme paths of one node or output."""

    id: str
    level: int
    receptive_field: int
    stride: int
    longest: Path
    shortest: Path


@dataclass(frozen=True)
class ReceptiveFields:
    """`nodes`: every graph node by id; `outputs`: "P3".."P7" (after the endpoint conv for SpineNet)."""

    name: str
    input_size: int
    nodes: dict[str, Field]
    outputs: dict[str, Field]

    def to_dict(self) -> dict:
        def field(f: Field) -> dict:
            return {"id": f.id, "level": f.level, "receptive_field": f.receptive_field, "stride": f.stride,
                    "longest_path": {"layers": f.longest.layers, "scale_changes": f.longest.scale_changes,
                                     "nodes": list(f.longest.nodes)},
                    "shortest_path": {"layers": f.shortest.layers, "scale_changes": f.shortest.scale_changes,
                                      "nodes": list(f.shortest.nodes)}}
        return {"name": self.name, "input_size": self.input_size,
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


def block_growth(block_fn: str, level: int, repeats: int = 1, stride: int = 1) -> tuple[int, int]:
    """Returns (receptive-field growth in pixels, weighted layers) of a block group at output `level` whose first
    block has `stride` (its input is at level - log2(stride))."""
    out_jump = 2 ** level
    in_jump = out_jump // stride
    threes = {"bottleneck": 1, "residual": 2, "mbconv": 1}[block_fn]
    layers = {"bottleneck": 3, "residual": 2, "mbconv": 3}[block_fn]
    growth = 2 * in_jump + 2 * (threes - 1) * out_jump + 2 * threes * out_jump * (repeats - 1)
    return growth, layers * repeats


def resample_growth(plan: ResamplePlan, source_level: int, mobile: bool) -> tuple[int, int]:
    """Returns (receptive-field growth in pixels, weighted layers) of a resampling connection from a feature at
    `source_level` following `plan`."""
    jump = 2 ** source_level
    if mobile:
        growth = sum(2 * jump * 2 ** index for index in range(plan.depthwise_convs))
        return growth, plan.depthwise_convs + 1
    if not plan.stride2_conv:
        return 0, 2
    growth = 2 * jump + ((plan.pool_kernel - 1) * 2 * jump if plan.pool_stride else 0)
    return growth, 3


def _spinenet_points(layout: Layout) -> _Points:
    spec = layout.spec
    mobile = spec.family == "spinenet_mobile"
    repeats = spec.scaling.block_repeats
    points = _Points()
    stems = [node for node in layout.nodes if node.role == "stem"]
    stem_growth = 2 if mobile else 6 + 2 * 2  # 3x3/2 conv; or 7x7/2 conv then 3x3/2 max-pool at stride 2
    first = stems[0]
    growth, layers = block_growth(first.block_fn, first.level, repeats)
    points.add(first.id, first.level, [_Link(None, stem_growth + growth, 1 + layers, 0)])
    second = stems[1]
    growth, layers = block_growth(second.block_fn, second.level, repeats, 2 ** (second.level - first.level))
    points.add(second.id, second.level, [_Link(first.id, growth, layers, int(second.level != first.level))])
    levels = {node.id: node.level for node in layout.nodes}
    for node in layout.nodes[len(stems):]:
        growth, layers = block_growth(node.block_fn, node.level, repeats)
        links = []
        for edge in layout.edges_into(node.id):
            if edge.kind == "merge":
                edge_growth, edge_layers = 0, 0
            else:
                edge_growth, edge_layers = resample_growth(edge.plan, levels[edge.source], mobile)
            links.append(_Link(edge.source, edge_growth + growth, edge_layers + layers,
                               int(levels[edge.source] != node.level)))
        points.add(node.id, node.level, links)
    for node in layout.nodes:
        if node.output_level:
            points.add(f"P{node.output_level}", node.output_level, [_Link(node.id, 0, 1, 0)], visible=False)
    return points


def _resnet_fpn_points(layout: Layout) -> _Points:
    points = _Points()
    last_of_level = {}
    previous = None
    for node in layout.nodes:
        if node.role == "stem":
            points.add(node.id, node.level, [_Link(None, 6 + 2 * 2, 1, 0)])
        elif node.role == "block":
            stride = 2 if node.id.endswith("_0") and node.level > 2 else 1
            growth, layers = block_growth("bottleneck", node.level, 1, stride)
            points.add(node.id, node.level, [_Link(previous.id, growth, layers, int(previous.level != node.level))])
            last_of_level[node.level] = node.id
        previous = node
    for level in (5, 4, 3):
        links = [_Link(last_of_level[level], 0, 1, 0)]
        if level < 5:
            links.append(_Link(f"merged{level + 1}", 0, 0, 1))
        points.add(f"merged{level}", level, links, visible=False)
    for level in (5, 4, 3):
        points.add(f"P{level}", level, [_Link(f"merged{level}", 2 * 2 ** level, 1, 0)])
    points.add("P6", 6, [_Link("P5", 2 * 2 ** 5, 1, 1)])
    points.add("P7", 7, [_Link("P6", 2 * 2 ** 6, 1, 1)])
    return points


@lru_cache(maxsize=256)
def receptive_fields(spec: Spec, input_size: int | None = None) -> ReceptiveFields:
    """Returns the receptive field (pixels), effective stride (pixels) and longest/shortest input paths of every
    graph node and every output P3-P7 of `spec` at `input_size` (default: the spec's). See the module docstring
    for the conventions. Cached; the result is read-only."""
    layout = resolve(spec, input_size)
    points = _resnet_fpn_points(layout) if spec.family == "resnet_fpn" else _spinenet_points(layout)
    solved = points.solve()

    def field(point: str, label: str) -> Field:
        rf, longest, shortest = solved[point]
        level = points.levels[point]
        return Field(label, level, rf, 2 ** level, Path(*longest), Path(*shortest))

    nodes = {node.id: field(node.id, node.id) for node in layout.nodes}
    outputs = {f"P{level}": field(f"P{level}", f"P{level}") for level in range(spec.min_level, spec.max_level + 1)}
    return ReceptiveFields(spec.name, layout.input_size, nodes, outputs)


def output_receptive_fields(spec: Spec, input_size: int | None = None) -> dict[str, int]:
    """Returns {"P3": pixels, ..., "P7": pixels}: the theoretical receptive field of each output."""
    return {key: value.receptive_field for key, value in receptive_fields(spec, input_size).outputs.items()}
