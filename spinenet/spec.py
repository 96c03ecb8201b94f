"""The architecture as plain data.

A `Spec` describes one backbone (SpineNet, Mobile SpineNet or ResNet-FPN) plus the RetinaNet head the paper
pairs it with. It is immutable and holds only numbers and strings, so it can be saved, diffed, hashed and
edited without touching PyTorch. `spec_to_dict` / `spec_from_dict` are the one mapping to JSON-like data;
`spinenet.validate` checks a dict before `spec_from_dict` turns it into a `Spec`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace

FAMILIES = ("spinenet", "spinenet_mobile", "resnet_fpn")
BLOCK_FNS = ("bottleneck", "residual", "mbconv")
FAMILY_BLOCK_FNS = {"spinenet": ("bottleneck", "residual"), "spinenet_mobile": ("mbconv",), "resnet_fpn": ()}
ACTIVATIONS = ("relu", "swish")
STEM_IDS = ("stem0", "stem1")

# Width of a block's 3x3 conv (C) per feature level, before filter_size_scale.
FILTER_SIZE_MAP = {1: 32, 2: 64, 3: 128, 4: 256, 5: 256, 6: 256, 7: 256}
MOBILE_FILTER_SIZE_MAP = {0: 8, 1: 16, 2: 24, 3: 40, 4: 80, 5: 112, 6: 112, 7: 112}
# Feature level of the two stem outputs that permuted blocks may take as parents.
STEM_LEVELS = {"spinenet": (2, 2), "spinenet_mobile": (1, 2)}
RESNET_STAGE_WIDTHS = (64, 128, 256, 512)
MBCONV_EXPAND_RATIO = 6
MBCONV_SE_RATIO = 0.2


@dataclass(frozen=True)
class Block:
    """One scale-permuted block: a block group at `level` fed by the sum of its two resampled parents."""

    id: str
    level: int
    block_fn: str
    parents: tuple[str, str]
    is_output: bool = False


@dataclass(frozen=True)
class Scaling:
    """The four numbers that turn SpineNet-49's topology into 49S/49/96/143/190."""

    endpoints_num_filters: int = 256
    filter_size_scale: float = 1.0
    resample_alpha: float = 0.5
    block_repeats: int = 1


@dataclass(frozen=True)
class Head:
    """RetinaNet head: `num_convs` shared 3x3 convs of `width` channels per subnet (separable for Mobile)."""

    num_convs: int = 4
    width: int = 256
    separable: bool = False
    num_classes: int = 91
    num_anchors: int = 9


@dataclass(frozen=True)
class Spec:
    """A whole architecture. `blocks` is used by the SpineNet families, `stages` by ResNet-FPN."""

    name: str
    family: str
    input_size: int = 640
    min_level: int = 3
    max_level: int = 7
    activation: str = "relu"
    scaling: Scaling = field(default_factory=Scaling)
    blocks: tuple[Block, ...] = ()
    stages: tuple[int, ...] = ()
    head: Head = field(default_factory=Head)

    def block(self, block_id: str) -> Block:
        """Returns the block with this id; raises KeyError if there is none."""
        for block in self.blocks:
            if block.id == block_id:
                return block
        raise KeyError(block_id)

    @property
    def block_ids(self) -> tuple[str, ...]:
        return tuple(block.id for block in self.blocks)

    @property
    def depth(self) -> int:
        """ResNet depth (50/101/152) from the stage sizes: 3 layers per bottleneck, + stem conv and classifier."""
        return 3 * sum(self.stages) + 2

    def with_blocks(self, blocks) -> "Spec":
        return replace(self, blocks=tuple(blocks))


def block_width(spec: Spec, level: int) -> int:
    """Returns C, the width of a block's inner conv at `level` (channels)."""
    table = MOBILE_FILTER_SIZE_MAP if spec.family == "spinenet_mobile" else FILTER_SIZE_MAP
    return int(table[level] * spec.scaling.filter_size_scale)


def block_out_channels(spec: Spec, block_fn: str, level: int) -> int:
    """Returns the output channels of a block group: 4C for a bottleneck, C otherwise."""
    width = block_width(spec, level)
    return 4 * width if block_fn == "bottleneck" else width


def feature_size(input_size: int, level: int) -> int:
    """Returns the side of a level-`level` feature map for a square input: ceil(input / 2**level) pixels."""
    return -(-input_size // (2 ** level))


def spec_to_dict(spec: Spec) -> dict:
    """Returns the spec as JSON-ready data (the file format). Only the fields of its family are written."""
    data = {
        "name": spec.name,
        "family": spec.family,
        "input_size": spec.input_size,
        "min_level": spec.min_level,
        "max_level": spec.max_level,
        "activation": spec.activation,
    }
    if spec.family == "resnet_fpn":
        data["stages"] = list(spec.stages)
        data["fpn_num_filters"] = spec.scaling.endpoints_num_filters
    else:
        data["scaling"] = {
            "endpoints_num_filters": spec.scaling.endpoints_num_filters,
            "filter_size_scale": spec.scaling.filter_size_scale,
            "resample_alpha": spec.scaling.resample_alpha,
            "block_repeats": spec.scaling.block_repeats,
        }
        data["blocks"] = [
            {"id": b.id, "level": b.level, "block_fn": b.block_fn, "parents": list(b.parents), "is_output": b.is_output}
            for b in spec.blocks
        ]
    data["head"] = {
        "num_convs": spec.head.num_convs,
        "width": spec.head.width,
        "separable": spec.head.separable,
        "num_classes": spec.head.num_classes,
        "num_anchors": spec.head.num_anchors,
    }
    return data


def spec_from_dict(data: dict) -> Spec:
    """Returns a Spec from already validated data (see `spinenet.validate.parse_spec` for untrusted input)."""
    family = data["family"]
    head = Head(**data.get("head", {}))
    common = dict(
        name=data["name"],
        family=family,
        input_size=data.get("input_size", 640),
        min_level=data.get("min_level", 3),
        max_level=data.get("max_level", 7),
        activation=data.get("activation", "relu"),
        head=head,
    )
    if family == "resnet_fpn":
        return Spec(**common, stages=tuple(data["stages"]),
                    scaling=Scaling(endpoints_num_filters=data.get("fpn_num_filters", 256)))
    blocks = tuple(
        Block(id=b["id"], level=b["level"], block_fn=b["block_fn"], parents=tuple(b["parents"]),
              is_output=b.get("is_output", False))
        for b in data["blocks"]
    )
    return Spec(**common, scaling=Scaling(**data["scaling"]), blocks=blocks)


def spec_hash(spec: Spec) -> str:
    """Returns a short content hash of the architecture (name excluded), stable across runs and formats."""
    data = spec_to_dict(spec)
    data.pop("name")
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
