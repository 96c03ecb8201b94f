"""The architecture as plain data.

A `Spec` describes one backbone (of a family registered in `spinenet.registry`) plus the RetinaNet head the paper
pairs it with. It is immutable and holds only numbers and strings, so it can be saved, diffed, hashed and
edited without touching PyTorch. `spec_to_dict` / `spec_from_dict` are the one mapping to JSON-like data;
`spinenet.validate` checks a dict before `spec_from_dict` turns it into a `Spec`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace

from spinescope.spinenet.registry import family, family_of

ACTIVATIONS = ("relu", "swish", "hard_swish")
# What the spec's operators mean where the authors' TF1 code and TF2 Model Garden differ (docs/spinenet-facts.md,
# section 14): "reference" (tensorflow/tpu, the default) or "model_garden" (tensorflow/models: TF 'SAME' padding of
# strided convs, repeated 3x3/2 max-pools, Mobile's hard-sigmoid squeeze-excite gate, dead blocks not built).
SEMANTICS = ("reference", "model_garden")
DEFAULT_SEMANTICS = "reference"
# Ids of the two stem outputs that the blocks of a block-list spec may take as parents.
STEM_IDS = ("stem0", "stem1")


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
    """RetinaNet head: `num_convs` shared 3x3 convs of `width` channels per subnet (separable for Mobile); the first
    goes from the endpoint width to `width`, which may be narrower (a file without `width` gets the endpoint width)."""

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
    semantics: str = DEFAULT_SEMANTICS

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
    if spec.semantics != DEFAULT_SEMANTICS:  # written only when not the default: existing files and hashes stay
        data["semantics"] = spec.semantics
    data.update(family_of(spec).to_dict(spec))
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
    common = dict(
        name=data["name"],
        family=data["family"],
        input_size=data.get("input_size", 640),
        min_level=data.get("min_level", 3),
        max_level=data.get("max_level", 7),
        activation=data.get("activation", "relu"),
        head=Head(**data.get("head", {})),
        semantics=data.get("semantics", DEFAULT_SEMANTICS),
    )
    spec = family(data["family"]).from_dict(data, common)
    if "width" not in data.get("head", {}):  # the head's width defaults to the endpoint width that feeds it
        spec = replace(spec, head=replace(spec.head, width=spec.scaling.endpoints_num_filters))
    return spec


def spec_hash(spec: Spec) -> str:
    """Returns a short content hash of the architecture (name excluded), stable across runs and formats. Kept on
    the (immutable) spec after the first call: every view of an edit keys its cache by it."""
    cached = spec.__dict__.get("_content_hash")
    if cached is None:
        data = spec_to_dict(spec)
        data.pop("name")
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        cached = hashlib.sha256(text.encode()).hexdigest()[:16]
        object.__setattr__(spec, "_content_hash", cached)
    return cached
