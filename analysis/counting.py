"""Params and MACs of a real model instantiation, counted by fvcore, attributed to blocks and parts.

Units: `params` are trainable parameters (BN running statistics are buffers, not counted); `macs` are
multiply-adds of convolutions and linear layers (the paper's "FLOPs"; real FLOPs are 2 x MACs). The other
operations fvcore counts (batch norm, upsampling, pooling) are reported apart in `other_ops`, and the operations
it cannot count in `uncounted_ops`, both by name.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from spinenet.build import build_model
from spinenet.layout import resolve
from spinenet.spec import Spec, feature_size

MAC_OPS = frozenset({"conv", "linear", "addmm", "matmul", "bmm", "einsum"})
PARTS = ("stem", "blocks", "fpn", "endpoints", "head")


@dataclass
class BlockCost:
    """Cost of one graph node: its block group plus the resampling that feeds it."""

    id: str
    level: int
    block_fn: str
    role: str
    params: int
    macs: int


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
    counter: str = "fvcore"

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


def analyze(spec: Spec, input_size: int | None = None, head: str = "none", pooling: str = "gap",
            num_classes: int = 1000) -> Analysis:
    """Returns params and MACs (per block, per part, total) of `spec` with `head` at `input_size` pixels,
    counted by fvcore tracing a real CPU instantiation (random weights, zero input, batch 1)."""
    from fvcore.nn import FlopCountAnalysis

    input_size = input_size or spec.input_size
    layout = resolve(spec, input_size)
    model = build_model(spec, head, input_size, device="cpu", num_classes=num_classes, pooling=pooling)
    images = torch.zeros(1, 3, input_size, input_size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        flops = FlopCountAnalysis(model, images)
        flops.unsupported_ops_warnings(False)
        flops.uncalled_modules_warnings(False)
        flops.tracer_warnings("none")
        by_module = flops.by_module_and_operator()
        unsupported = dict(flops.unsupported_ops())

    def macs_of(name: str) -> int:
        return sum(count for op, count in by_module.get(name, {}).items() if op in MAC_OPS)

    modules = dict(model.named_modules())
    node_role = {node.id: node.role for node in layout.nodes}
    blocks = [BlockCost(node.id, node.level, node.block_fn, node.role,
                        count_params(modules[f"backbone.blocks.{node.id}"]), macs_of(f"backbone.blocks.{node.id}"))
              for node in layout.nodes]
    parts = {part: {"params": 0, "macs": 0} for part in PARTS}
    for block in blocks:
        part = {"stem": "stem", "fpn": "fpn"}.get(node_role[block.id], "blocks")
        parts[part]["params"] += block.params
        parts[part]["macs"] += block.macs
    for name in ("backbone.stem_conv", "backbone.endpoints", "head"):
        if name in modules and modules[name] is not None:
            parts[_part_of(name)]["params"] += count_params(modules[name])
            parts[_part_of(name)]["macs"] += macs_of(name)
    total_ops = by_module.get("", {})
    total_macs = sum(count for op, count in total_ops.items() if op in MAC_OPS)
    head_params, head_macs = count_params(model.head), macs_of("head") if model.head is not None else 0
    width = spec.scaling.endpoints_num_filters
    outputs = {f"P{level}": [width, feature_size(input_size, level), feature_size(input_size, level)]
               for level in range(spec.min_level, spec.max_level + 1)}
    return Analysis(
        name=spec.name, input_size=input_size, head=head,
        params=count_params(model), macs=total_macs,
        backbone_params=count_params(model.backbone), backbone_macs=macs_of("backbone"),
        head_params=head_params, head_macs=head_macs,
        parts={name: value for name, value in parts.items() if value["params"] or value["macs"]},
        blocks=blocks, outputs=outputs,
        other_ops={op: count for op, count in total_ops.items() if op not in MAC_OPS},
        uncounted_ops=unsupported,
    )
