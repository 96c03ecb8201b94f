"""Block-type what-if: what one block would cost as a bottleneck, a residual block or an MBConv block.

Two views of the same question, both counted exactly with `analysis.fast_count` (fvcore's numbers):
- `as_specified`: the block retyped in the spec. SpineNet's convention fixes the 3x3 width C per level, so a
  bottleneck takes and gives 4C channels and a residual block C; the whole model changes too (the resamplings into
  and out of the block, possibly the 0-outdegree merges), given as `model_*_delta` where the family allows the type.
- `same_channels`: the block's own input and output channels kept, the classic comparison of what a bottleneck's
  1x1 reductions save: 256 -> 64 -> 256 (1x1, 3x3, 1x1) against two 3x3 convs at 256 channels, or an MBConv
  (1x1 expansion x6, 3x3 depthwise, squeeze-excite, 1x1 projection).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from analysis.fast_count import count_block_group, count_model
from spinenet.layout import resolve
from spinenet.spec import (BLOCK_FNS, FAMILY_BLOCK_FNS, MOBILE_FILTER_SIZE_MAP, STEM_IDS, Spec, block_out_channels,
                           block_width)
from spinenet.validate import SpecError, check_spec


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
    """The options for block `id` (level, input side `size` in pixels, `stride` of its first block)."""

    id: str
    level: int
    size: int
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


def _group_cost(block_fn, in_channels, width, side, repeats, stride, activation) -> tuple[int, int]:
    counts = count_block_group(block_fn, in_channels, width, side, repeats, stride, activation)
    return counts.params[""], counts.macs("")


def block_whatif(spec: Spec, block_id: str, input_size: int | None = None, head: str = "none") -> WhatIf:
    """Returns the block-type what-if of graph node `block_id` of `spec` at `input_size` (default: the spec's);
    model deltas are for the model with `head`. Raises KeyError for an unknown block id."""
    layout = resolve(spec, input_size)
    nodes = {node.id: node for node in layout.nodes}
    if block_id not in nodes:
        raise KeyError(f"no block {block_id!r} in {spec.name}")
    node = nodes[block_id]
    if node.role == "fpn" or node.block_fn not in BLOCK_FNS:
        raise KeyError(f"{block_id!r} is not a block of bottleneck/residual/MBConv type")
    resnet = spec.family == "resnet_fpn"
    mobile = spec.family == "spinenet_mobile"
    repeats = 1 if resnet else spec.scaling.block_repeats
    stride = 2 if (resnet and block_id.endswith("_0") and node.level > 2) or (mobile and block_id == "stem1") else 1
    side = node.size if stride == 1 else -(-layout.input_size // 2 ** (node.level - 1))
    activation = spec.activation
    in_channels = node.in_channels
    if node.role == "stem":  # the stem blocks read the stem conv (64 channels; Mobile: 8 x scale) or stem0
        stem_conv = int(MOBILE_FILTER_SIZE_MAP[0] * spec.scaling.filter_size_scale) if mobile else 64
        in_channels = stem_conv if block_id == STEM_IDS[0] else nodes[STEM_IDS[0]].out_channels

    same = []
    for block_fn in BLOCK_FNS:
        width = max(1, node.out_channels // 4) if block_fn == "bottleneck" else node.out_channels
        params, macs = _group_cost(block_fn, in_channels, width, side, repeats, stride, activation)
        same.append(BlockOption(block_fn, in_channels, width, 4 * width if block_fn == "bottleneck" else width,
                                params, macs, block_fn == node.block_fn))

    specified = []
    if node.role == "block" and not resnet:
        base = count_model(spec, layout.input_size, head)
        width = block_width(spec, node.level)
        for block_fn in BLOCK_FNS:
            in_channels = width if mobile else block_out_channels(spec, block_fn, node.level)
            params, macs = _group_cost(block_fn, in_channels, width, side, repeats, 1, activation)
            params_delta = macs_delta = None
            if block_fn in FAMILY_BLOCK_FNS[spec.family]:
                edited = spec.with_blocks(replace(b, block_fn=block_fn) if b.id == block_id else b
                                          for b in spec.blocks)
                try:
                    counts = count_model(check_spec(edited), layout.input_size, head)
                    params_delta = counts.params[""] - base.params[""]
                    macs_delta = counts.macs() - base.macs()
                except SpecError:
                    pass
            specified.append(BlockOption(block_fn, in_channels, width, block_out_channels(spec, block_fn, node.level),
                                         params, macs, block_fn == node.block_fn, params_delta, macs_delta))
    return WhatIf(block_id, node.level, side, stride, repeats, node.block_fn, tuple(specified), tuple(same))
