"""Block-type what-if: what one block would cost as each registered block type (bottleneck, residual, MBConv).

Two views of the same question, both counted exactly over the structure (fvcore's numbers):
- `as_specified`: the block retyped in the spec. SpineNet's convention fixes the 3x3 width C per level, so a
  bottleneck takes and gives 4C channels and a residual block C; the whole model changes too (the resamplings into
  and out of the block, possibly the 0-outdegree merges), given as `model_*_delta` where the family allows the type.
- `same_channels`: the block's own input and output channels kept, the classic comparison of what a bottleneck's
  1x1 reductions save: 256 -> 64 -> 256 (1x1, 3x3, 1x1) against two 3x3 convs at 256 channels, or an MBConv
  (1x1 expansion x6, 3x3 depthwise, squeeze-excite, 1x1 projection).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from spinescope.analysis.architecture.receptive_field import path_cost
from spinescope.analysis.counting.fast import count_layers, count_model
from spinescope.spinenet.blocks import BLOCK_TYPES
from spinescope.spinenet.describe import describe, describe_block_group
from spinescope.spinenet.input_size import InputSize, compact
from spinescope.spinenet.registry import family_of
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.structure import Layer
from spinescope.spinenet.validate import SpecError, check_spec


@dataclass(frozen=True)
class BlockOption:
    """One block type for one block: its block group's channels, params and MACs (one image, at the block's
    feature size, `repeats` blocks), and for `as_specified` options the change of the whole model's params and
    MACs (None where the family does not allow the type or the block is not editable)."""

    block_fn: str
    in_channels: int
    width: int
    out_channels: int
    params: int
    macs: int
    current: bool
    model_params_delta: int | None = None
    model_macs_delta: int | None = None


@dataclass(frozen=True)
class WhatIf:
    """The options for block `id` (level, input side `size` in pixels, or (height, width) for a non-square map,
    `stride` of its first block)."""

    id: str
    level: int
    size: int | tuple[int, int]
    stride: int
    repeats: int
    block_fn: str
    as_specified: tuple[BlockOption, ...]
    same_channels: tuple[BlockOption, ...]

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["as_specified"] = [option.__dict__ for option in self.as_specified]
        data["same_channels"] = [option.__dict__ for option in self.same_channels]
        return data


def _block_group(structure, block_id: str) -> list[Layer]:
    """Returns the blocks of graph node `block_id`'s block group in the structure."""
    module = structure.layer(f"backbone.blocks.{block_id}")
    group = module.child("group") if module.has_child("group") else module
    return group.children if group.kind == "sequential" else [group]


def _first_input(layer: Layer):
    """Returns the input shape of the first call in `layer`'s subtree (its input in the forward pass)."""
    return min((call for sub in layer.walk() for call in sub.calls), key=lambda call: call.order).inputs[0]


def _group_cost(block_fn, in_channels, width, side, repeats, stride, activation) -> tuple[int, int]:
    counts = count_layers(describe_block_group(block_fn, in_channels, width, side, repeats, stride, activation))
    return counts.params[""], counts.macs("")


def block_whatif(spec: Spec, block_id: str, input_size: InputSize | None = None, head: str = "none") -> WhatIf:
    """Returns the block-type what-if of graph node `block_id` of `spec` at `input_size` (default: the spec's);
    model deltas are for the model with `head`. Raises KeyError for an unknown block id or a node that is not a
    block of a registered block type."""
    structure = describe(spec, input_size)
    layout = structure.layout
    nodes = {node.id: node for node in layout.nodes}
    if block_id not in nodes:
        raise KeyError(f"no block {block_id!r} in {spec.name}")
    node = nodes[block_id]
    if node.block_fn not in BLOCK_TYPES:
        raise KeyError(f"{block_id!r} is not a block of a block type ({', '.join(BLOCK_TYPES)})")
    blocks = _block_group(structure, block_id)
    in_channels, map_height, map_width = _first_input(blocks[0])
    side = compact((map_height, map_width))
    stride = path_cost(blocks[0], 1)[2]
    repeats = len(blocks)
    activation = spec.activation

    same = []
    for kind in BLOCK_TYPES.values():
        width = max(1, node.out_channels // kind.expansion)
        params, macs = _group_cost(kind.name, in_channels, width, side, repeats, stride, activation)
        same.append(BlockOption(kind.name, in_channels, width, kind.out_channels(width), params, macs,
                                kind.name == node.block_fn))

    specified = []
    family = family_of(spec)
    if node.role == "block" and family.has_blocks:
        base = count_model(spec, layout.input_size, head)
        for kind in BLOCK_TYPES.values():
            retyped = spec.with_blocks(replace(b, block_fn=kind.name) if b.id == block_id else b for b in spec.blocks)
            retyped_blocks = _block_group(describe(retyped, layout.input_size), block_id)
            group_in = _first_input(retyped_blocks[0])[0]
            width = family.block_width(spec, node.level)
            params, macs = _group_cost(kind.name, group_in, width, side, repeats, 1, activation)
            params_delta = macs_delta = None
            if kind.name in family.block_fns:
                try:
                    counts = count_model(check_spec(retyped), layout.input_size, head)
                    params_delta = counts.params[""] - base.params[""]
                    macs_delta = counts.macs() - base.macs()
                except SpecError:
                    pass
            specified.append(BlockOption(kind.name, group_in, width, kind.out_channels(width), params, macs,
                                         kind.name == node.block_fn, params_delta, macs_delta))
    return WhatIf(block_id, node.level, side, stride, repeats, node.block_fn, tuple(specified), tuple(same))
