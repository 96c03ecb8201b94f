"""Params and MACs of a model, attributed to blocks and parts: fvcore's numbers, either derived from shapes in
milliseconds (`analysis.counting.fast`, the default) or measured by fvcore tracing a real CPU instantiation.

Units: `params` are trainable parameters (BN running statistics are buffers, not counted); `macs` are
multiply-adds of convolutions and linear layers (the paper's "FLOPs"; real FLOPs are 2 x MACs). The other
operations fvcore counts (batch norm, upsampling, pooling) are reported apart in `other_ops`, and the operations
it cannot count in `uncounted_ops`, both by name.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from spinescope.analysis.architecture.receptive_field import fields_of
from spinescope.analysis.counting.fast import MAC_OPS, ModelCounts, count_differences, count_model
from spinescope.analysis.counting.fvcore_trace import count_with_fvcore
from spinescope.spinenet.describe import describe
from spinescope.spinenet.input_size import InputSize, normalize, size_to_json
from spinescope.spinenet.layout import dead_blocks, live_nodes
from spinescope.spinenet.spec import Spec

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
    """What `analyze` returns. All counts are for batch size 1 at `input_size` (a side, or (height, width)), pixels;
    in JSON the size is the side for a square input, else "WIDTHxHEIGHT"."""

    name: str
    input_size: InputSize
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
    semantics: str = "reference"  # the spec's: "reference" (tensorflow/tpu) or "model_garden" (tensorflow/models)
    # Blocks that reach no output -> why. Reference: built, params counted, 0 MACs; Model Garden: not built (not in
    # `blocks`). Both written to JSON only when not the default (no dead blocks, the reference).
    dead_blocks: dict[str, str] = field(default_factory=dict)

    @property
    def flops(self) -> int:
        """FLOPs counted as 2 x MACs (one multiply-add = two floating-point operations)."""
        return 2 * self.macs

    @property
    def head_macs_share(self) -> float:
        """The head's fraction (0..1) of the whole model's MACs (0.0 without a head)."""
        return self.head_macs / self.macs if self.macs else 0.0

    @property
    def head_params_share(self) -> float:
        """The head's fraction (0..1) of the whole model's params (0.0 without a head)."""
        return self.head_params / self.params if self.params else 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["input_size"] = size_to_json(self.input_size)
        data["flops"] = self.flops
        data["head_macs_share"] = self.head_macs_share
        data["head_params_share"] = self.head_params_share
        if self.semantics == "reference":
            data.pop("semantics")
        if not self.dead_blocks:
            data.pop("dead_blocks")
        return data


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


def analyze(spec: Spec, input_size: InputSize | None = None, head: str = "none", pooling: str = "gap",
            num_classes: int = 1000, counter: str = "fast", verify: bool = False) -> Analysis:
    """Returns params and MACs (per block, per part, total) of `spec` with `head` at `input_size` pixels.

    counter: "fast" (default: fvcore's numbers derived from shapes in milliseconds, `analysis.counting.fast`) or
    "fvcore" (fvcore tracing a real CPU instantiation: seconds to minutes). verify=True also runs the other
    counter and fills `verified` (True when every module's counts and params agree) and `differences`.
    """
    if counter not in COUNTERS:
        raise ValueError(f"unknown counter {counter!r}; use one of {', '.join(COUNTERS)}")
    input_size = normalize(input_size or spec.input_size)
    count = {"fast": count_model, "fvcore": count_with_fvcore}
    options = {"num_classes": num_classes, "pooling": pooling}
    counts = count[counter](spec, input_size, head, num_classes, pooling)
    result = _assemble(spec, input_size, head, counts, counter, options)
    if verify:
        other = "fvcore" if counter == "fast" else "fast"
        reference = count[other](spec, input_size, head, num_classes, pooling)
        result.differences = count_differences(counts, reference, (counter, other))
        result.verified = not result.differences
    return result


def _assemble(spec: Spec, input_size: InputSize, head: str, counts: ModelCounts, counter: str, options: dict) -> Analysis:
    structure = describe(spec, input_size, head, **options)
    layout = structure.layout
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
            output_elements=node.out_channels * node.height * node.width,
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
    outputs = {level: list(shape) for level, shape in structure.features.items()}
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
        receptive_field={label: field.receptive_field for label, field in fields_of(structure).outputs.items()},
        semantics=spec.semantics, dead_blocks=dead_blocks(layout),
    )
