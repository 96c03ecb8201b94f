"""Params and MACs of a model, attributed to blocks and parts: fvcore's numbers, either derived from shapes in
milliseconds (`analysis.fast_count`, the default) or measured by fvcore tracing a real CPU instantiation.

Units: `params` are trainable parameters (BN running statistics are buffers, not counted); `macs` are
multiply-adds of convolutions and linear layers (the paper's "FLOPs"; real FLOPs are 2 x MACs). The other
operations fvcore counts (batch norm, upsampling, pooling) are reported apart in `other_ops`, and the operations
it cannot count in `uncounted_ops`, both by name.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from analysis.fast_count import MAC_OPS, ModelCounts, count_differences, count_model, live_nodes
from analysis.limits import check_fvcore_request
from analysis.receptive_field import output_receptive_fields
from spinenet.layout import resolve
from spinenet.spec import Spec, feature_size

if TYPE_CHECKING:
    from torch import nn

PARTS = ("stem", "blocks", "fpn", "endpoints", "head")


@dataclass
class BlockCost:
    """Cost of one graph node: its block group plus the resampling that feeds it (params, MACs), split into the
    block itself (`block_*`) and the resampling (`resample_*`: alpha 1x1 convs, stride-2 convs, pooling and
    upsampling; for an FPN level its lateral 1x1). `output_elements` is the size of its output activation
    (channels x height x width); the shares are fractions (0..1) of the whole model's params and MACs."""

    id: str
    level: int
    block_fn: str
    role: str
    params: int
    macs: int
    block_params: int = 0
    block_macs: int = 0
    resample_params: int = 0
    resample_macs: int = 0
    output_elements: int = 0
    params_share: float = 0.0
    macs_share: float = 0.0
    live: bool = True  # False: its output reaches no output level (dead code: 0 MACs, as in fvcore's trace)


@dataclass
class Analysis:
    """What `analyze` returns. All counts are for batch size 1 at `input_size` x `input_size` pixels."""

    name: str
    input_size: int
    head: str
    params: int
    macs: int
    backbone_params: int
    backbone_macs: int
    head_params: int
    head_macs: int
    parts: dict[str, dict[str, int]]
    blocks: list[BlockCost]
    outputs: dict[str, list[int]]
    other_ops: dict[str, int] = field(default_factory=dict)
    uncounted_ops: dict[str, int] = field(default_factory=dict)
    counter: str = "fast"
    verified: bool | None = None  # None: not verified; True/False: the other counter agreed / differed
    differences: list[str] = field(default_factory=list)
    receptive_field: dict[str, int] = field(default_factory=dict)  # "P3".. -> theoretical receptive field, pixels

    @property
    def flops(self) -> int:
        """FLOPs counted as 2 x MACs (one multiply-add = two floating-point operations)."""
        return 2 * self.macs

    def to_dict(self) -> dict:
        data = asdict(self)
        data["flops"] = self.flops
        return data


def count_params(module: nn.Module | None) -> int:
    """Returns the number of trainable parameters of `module` (0 for None)."""
    return 0 if module is None else sum(p.numel() for p in module.parameters() if p.requires_grad)


def _part_of(module_name: str) -> str | None:
    """Maps a module path to its part: stem, blocks (permuted/ResNet blocks), fpn, endpoints or head."""
    if module_name.startswith("head"):
        return "head"
    if module_name.startswith("backbone.stem_conv"):
        return "stem"
    if module_name.startswith("backbone.endpoints"):
        return "endpoints"
    return None


COUNTERS = ("fast", "fvcore")


def count_with_fvcore(spec: Spec, input_size: int | None = None, head: str = "none", num_classes: int = 1000,
                      pooling: str = "gap") -> ModelCounts:
    """Returns per-module counts and params measured by fvcore tracing a real CPU instantiation (zero weights and
    input, batch 1; values do not change counts, and skipping random initialisation saves seconds): slow (seconds
    to minutes), the reference that `analysis.fast_count` must equal. Raises ResourceLimitError before building
    anything when the trace would exceed the memory or time limits (`analysis.limits`)."""
    import torch
    from fvcore.nn import FlopCountAnalysis

    from spinenet.build import build_model

    input_size = input_size or spec.input_size
    check_fvcore_request(spec, input_size, head, count_model(spec, input_size, head, num_classes, pooling).macs(""))
    model = build_model(spec, head, input_size, device="meta", num_classes=num_classes, pooling=pooling)
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.zero_()
    images = torch.zeros(1, 3, input_size, input_size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        flops = FlopCountAnalysis(model, images)
        flops.unsupported_ops_warnings(False)
        flops.uncalled_modules_warnings(False)
        flops.tracer_warnings("none")
        by_module = flops.by_module_and_operator()
        names = list(by_module)
        uncounted = {name: dict(flops.unsupported_ops(name)) for name in names}
    modules = dict(model.named_modules())
    return ModelCounts(ops={name: {op: int(n) for op, n in by_module[name].items()} for name in names},
                       uncounted=uncounted, params={name: count_params(modules[name]) for name in names})


def analyze(spec: Spec, input_size: int | None = None, head: str = "none", pooling: str = "gap",
            num_classes: int = 1000, counter: str = "fast", verify: bool = False) -> Analysis:
    """Returns params and MACs (per block, per part, total) of `spec` with `head` at `input_size` pixels.

    counter: "fast" (default: fvcore's numbers derived from shapes in milliseconds, `analysis.fast_count`) or
    "fvcore" (fvcore tracing a real CPU instantiation: seconds to minutes). verify=True also runs the other
    counter and fills `verified` (True when every module's counts and params agree) and `differences`.
    """
    if counter not in COUNTERS:
        raise ValueError(f"unknown counter {counter!r}; use one of {', '.join(COUNTERS)}")
    input_size = input_size or spec.input_size
    count = {"fast": count_model, "fvcore": count_with_fvcore}
    counts = count[counter](spec, input_size, head, num_classes, pooling)
    result = _assemble(spec, input_size, head, counts, counter)
    if verify:
        other = "fvcore" if counter == "fast" else "fast"
        reference = count[other](spec, input_size, head, num_classes, pooling)
        result.differences = count_differences(counts, reference, (counter, other))
        result.verified = not result.differences
    return result


def _assemble(spec: Spec, input_size: int, head: str, counts: ModelCounts, counter: str) -> Analysis:
    layout = resolve(spec, input_size)
    total_ops = counts.ops[""]
    total_macs = counts.macs("")
    total_params = counts.params[""]
    live = live_nodes(layout)
    blocks = []
    for node in layout.nodes:
        name = f"backbone.blocks.{node.id}"
        feed = f"{name}.resample" if f"{name}.resample" in counts.params else f"{name}.lateral"
        params, macs = counts.params[name], counts.macs(name)
        resample_params, resample_macs = counts.params.get(feed, 0), counts.macs(feed)
        blocks.append(BlockCost(
            node.id, node.level, node.block_fn, node.role, params, macs,
            block_params=params - resample_params, block_macs=macs - resample_macs,
            resample_params=resample_params, resample_macs=resample_macs,
            output_elements=node.out_channels * node.size * node.size,
            params_share=params / total_params if total_params else 0.0,
            macs_share=macs / total_macs if total_macs else 0.0, live=node.id in live))
    parts = {part: {"params": 0, "macs": 0} for part in PARTS}
    for block in blocks:
        part = {"stem": "stem", "fpn": "fpn"}.get(block.role, "blocks")
        parts[part]["params"] += block.params
        parts[part]["macs"] += block.macs
    for name in ("backbone.stem_conv", "backbone.endpoints", "head"):
        if name in counts.params:
            parts[_part_of(name)]["params"] += counts.params[name]
            parts[_part_of(name)]["macs"] += counts.macs(name)
    width = spec.scaling.endpoints_num_filters
    outputs = {f"P{level}": [width, feature_size(input_size, level), feature_size(input_size, level)]
               for level in range(spec.min_level, spec.max_level + 1)}
    return Analysis(
        name=spec.name, input_size=input_size, head=head,
        params=total_params, macs=total_macs,
        backbone_params=counts.params["backbone"], backbone_macs=counts.macs("backbone"),
        head_params=counts.params.get("head", 0), head_macs=counts.macs("head"),
        parts={name: value for name, value in parts.items() if value["params"] or value["macs"]},
        blocks=blocks, outputs=outputs,
        other_ops={op: count for op, count in total_ops.items() if op not in MAC_OPS},
        uncounted_ops=dict(counts.uncounted[""]),
        counter=counter,
        receptive_field=output_receptive_fields(spec, input_size),
    )
