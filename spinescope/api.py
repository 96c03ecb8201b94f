"""spec file or name -> nn.Module, with the conventions people know from timm, torchvision and detectron2. See the
package docstring for an example.

- A `Backbone` returns {"P3": tensor, ...}; `out_channels` (torchvision), `feature_info` (timm) and
  `output_shape()` (detectron2's ShapeSpec) describe it. Its module tree is the model's `backbone` name for name
  (`create_model(...).backbone` is a Backbone), so weights move between `create_backbone(spec)` and
  `create_model(spec, ...).backbone` with a strict `load_state_dict`.
- `create_model(spec, "classification", ...)` is a `Classifier` with timm's `forward_features`, `forward_head`,
  `reset_classifier`, `num_classes` and `num_features`; its state dict is `build_model`'s.
- Arguments are checked: an unknown keyword raises TypeError; a value outside the spec validator's limits
  (`spinenet.validate.LIMITS`) raises ValueError (a spec's head field: SpecError, a ValueError) with one line naming
  the argument and the value. There are no pretrained weights: `pretrained=True` raises ValueError.
"""
from __future__ import annotations

import difflib
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.describe import describe
from spinescope.spinenet.file_names import file_name_problem, shown
from spinescope.spinenet.formats import load_spec_file
from spinescope.spinenet.heads.classification import merge_levels, parse_pooling, pool_map
from spinescope.spinenet.init import initialize
from spinescope.spinenet.input_size import InputSize, normalize, parse_size
from spinescope.spinenet.modules import instantiate
from spinescope.spinenet.registry import NO_HEAD, head_names, head_type
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.structure import FORWARDS
from spinescope.spinenet.validate import HEAD_FIELDS, LIMITS, SpecError, check_int, check_spec, describe_value

CLASSIFICATION = "classification"
IN_CHANNELS = 3  # every stem takes RGB images
PRETRAINED_HINT = ("no pretrained weights are bundled with SpineScope (models start from random weights, initialized "
                   "as the authors' code does); load a state dict of your own with load_state_dict")


class ShapeSpec(NamedTuple):
    """One output, as detectron2's ShapeSpec: channels and stride (input pixels per output pixel, 2**level);
    height and width at the input size the backbone was described for (the forward pass accepts other sizes)."""

    channels: int
    stride: int
    height: int | None = None
    width: int | None = None


class FeatureInfo(list):
    """The outputs in order, as timm's `feature_info`: a list of {"module", "num_chs", "reduction", "level",
    "index"} dicts, with timm's accessors. `out_indices` is every output's index (a backbone returns all its
    outputs). `idx` as in timm: None for every output (a list), an int for that output's value, a list or tuple
    for a list of those outputs' values."""

    @property
    def out_indices(self) -> tuple[int, ...]:
        return tuple(range(len(self)))

    def get(self, key: str, idx: int | list[int] | tuple[int, ...] | None = None):
        """Returns the value of `key` at `idx` (see the class)."""
        if idx is None:
            return [info[key] for info in self]
        if isinstance(idx, (list, tuple)):
            return [self[i][key] for i in idx]
        return self[idx][key]

    def get_dicts(self, keys: list[str] | None = None, idx: int | list[int] | tuple[int, ...] | None = None):
        """Returns the dicts at `idx` (see the class), with only `keys` when given."""
        def pick(info):
            return info if keys is None else {key: info[key] for key in keys}

        if idx is None:
            return [pick(info) for info in self]
        if isinstance(idx, (list, tuple)):
            return [pick(self[i]) for i in idx]
        return pick(self[idx])

    def channels(self, idx: int | list[int] | tuple[int, ...] | None = None):
        return self.get("num_chs", idx)

    def reduction(self, idx: int | list[int] | tuple[int, ...] | None = None):
        return self.get("reduction", idx)

    def module_name(self, idx: int | list[int] | tuple[int, ...] | None = None):
        return self.get("module", idx)


def _feature_module(modules: dict, level: str) -> str:
    """The name of the module whose output is feature `level` (a forward hook on it sees the tensor `forward`
    returns): a SpineNet endpoint, ResNet-FPN's last BN of the level."""
    for name in (f"endpoints.{level}", f"blocks.{level}.bn"):
        if name in modules:
            return name
    raise RuntimeError(f"no module gives output {level}")  # a new family: name its outputs' modules here


class Backbone(nn.Module):
    """A backbone: `forward(images)` returns an OrderedDict {"P3": tensor, ...}; `out_channels`, `feature_info`,
    `output_shape()`, `spec` and `input_size` (the size the structure was described for) describe it.

    Its children are those of `build_model(spec).backbone` (`stem_conv`, `blocks`, `endpoints`, ...), so its state
    dict and module names are a model's `backbone`'s without the "backbone." prefix. `module`: an already built
    backbone of `spec` whose children (and so weights) it takes over instead of building one (as `create_model`
    does)."""

    def __init__(self, spec: Spec, input_size: InputSize | None = None, device="cpu", *,
                 module: nn.Module | None = None):
        super().__init__()
        structure = describe(spec, input_size)
        layer = structure.layer("backbone")
        if module is None:
            module = build_model(spec, NO_HEAD, structure.input_size, device).backbone
        self.spec, self.input_size, self._kind = spec, structure.input_size, layer.kind
        for name, child in module.named_children():
            self.add_module(name, child)
        for key in layer.attrs:  # what the family's forward reads besides the children (ids, levels)
            if hasattr(self, key) or key in ("feature_info", "_shapes"):
                raise RuntimeError(f"the backbone's attribute {key!r} clashes with Backbone's")
            setattr(self, key, getattr(module, key))
        self._shapes = OrderedDict(
            (name, ShapeSpec(channels, 2 ** int(name[1:]), height, width))
            for name, (channels, height, width) in structure.features.items())
        modules = dict(self.named_modules())
        self.feature_info = FeatureInfo(
            {"module": _feature_module(modules, name), "num_chs": shape.channels, "reduction": shape.stride,
             "level": int(name[1:]), "index": index}
            for index, (name, shape) in enumerate(self._shapes.items()))
        self.train(module.training)

    @property
    def out_channels(self) -> int | list[int]:
        """The outputs' channels: one int when every output has the same width, as every built-in family's do
        (torchvision's detectors and FPN-style heads need one), else the list per output (`feature_info.channels()`),
        which such detectors refuse."""
        channels = self.feature_info.channels()
        return channels[0] if len(set(channels)) == 1 else channels

    @property
    def body(self) -> "Backbone":
        """The backbone itself: the module that was `body` before Backbone took over its children (so
        `backbone.body.stem_conv` still works; state-dict keys and feature_info names have no "body." prefix)."""
        return self

    def output_shape(self) -> dict[str, ShapeSpec]:
        """Returns {"P3": ShapeSpec(channels, stride, height, width), ...} (detectron2's Backbone.output_shape)."""
        return dict(self._shapes)

    def forward(self, images):
        return OrderedDict(FORWARDS[self._kind](self, images))


class Classifier(nn.Module):
    """`create_model(spec, "classification", ...)`, with timm's classifier conventions. Submodules as
    `build_model`'s: `backbone` (a Backbone) and `head` (`pool`, the pyramid's pooling layers, and `fc`).

    forward(x) == forward_head(forward_features(x)): logits [N, num_classes].
    num_features: the channels C of `forward_features`' map; head_hidden_size: the classifier's input length
    (C with 'gap', C x sum(n^2) with an SPP pyramid), what `forward_head(x, pre_logits=True)` returns."""

    def __init__(self, spec: Spec, input_size: InputSize, backbone: Backbone, head: nn.Module, pooling: str):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.spec, self.input_size, self.pooling = spec, input_size, pooling
        self.num_features = backbone.feature_info.channels(0)  # the head reads the finest output's channels
        self.num_classes = head.fc.out_features
        self.head_hidden_size = head.fc.in_features
        self.train(backbone.training)

    def forward_features(self, x):
        """Returns the map the head pools, [N, num_features, H, W]: the outputs resized (nearest) to the finest
        one's size and averaged."""
        return merge_levels(self.backbone(x))

    def forward_head(self, x, pre_logits: bool = False):
        """Returns the logits of a `forward_features` map, or with `pre_logits` the pooled vector the classifier
        reads [N, head_hidden_size]."""
        x = pool_map(self.head.pool, x)
        return x if pre_logits else self.head.fc(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replaces the classifier with a new one (random weights) for `num_classes` classes; 0 leaves none
        (nn.Identity: `forward` returns the pooled vector), as in timm. `global_pool`: a new pooling ('gap',
        'spp', 'spp_avg', 'spp:6,3,2,1', ...; default: the current one)."""
        problem = _int_problem("num_classes", num_classes, 0, LIMITS["max_num_classes"])
        if problem:
            raise ValueError(problem)
        pooling = self.pooling if global_pool is None else global_pool
        parse_pooling(pooling)  # ValueError naming it
        reference = next(self.parameters())
        layer = describe(self.spec, self.input_size, CLASSIFICATION, num_classes=max(num_classes, 1),
                         pooling=pooling).layer("head")
        with torch.device("meta"):  # as build_model makes it: named as the Layers, then initialized once
            holder = nn.Module()
            holder.head = instantiate(layer)
        holder.to_empty(device=reference.device)
        if reference.device.type != "meta":
            initialize(layer, holder)
        head = holder.head.to(reference.dtype).train(self.training)
        self.head.pool = head.pool
        self.head.fc = head.fc if num_classes else nn.Identity()
        self.pooling, self.num_classes, self.head_hidden_size = pooling, num_classes, head.fc.in_features


def load_spec(spec: Spec | str | Path) -> Spec:
    """Returns a Spec from a Spec (checked), a built-in name (e.g. "spinenet-49") or a .yaml/.json/.txt path.
    Raises SpecError with one line per problem (a name that is neither a built-in nor a file, or that cannot
    name a file, included)."""
    if isinstance(spec, Spec):
        return check_spec(spec)
    text = str(spec)
    if text.lower() in BUILTIN_NAMES:
        return load_builtin(text.lower())
    problem = file_name_problem(text)
    if problem:
        raise SpecError([f"spec {shown(text)}: not a built-in, and {problem}"])
    if not Path(text).is_file():
        raise SpecError([f"{ascii(text)}: not a built-in ({', '.join(BUILTIN_NAMES)}) and no such file"])
    return load_spec_file(text)


def create_backbone(spec: Spec | str | Path, input_size: InputSize | None = None, device="cpu", *,
                    pretrained: bool = False, in_chans: int = 3) -> Backbone:
    """Returns the backbone of `spec` (see `load_spec`) in eval mode with random weights: P<min_level>..P<max_level>
    feature maps, with `out_channels`, `feature_info` and `output_shape()`.

    input_size: the size (a side, a (height, width) pair or "WIDTHxHEIGHT") the outputs are described for, within
    the spec limits (default: the spec's); the forward pass accepts other sizes. `pretrained` (only False) and
    `in_chans` (only 3) are there for timm's callers; other keywords raise TypeError."""
    _check_timm_arguments(pretrained, in_chans)
    input_size = _checked_input_size(input_size)
    return Backbone(load_spec(spec), input_size, device)


def create_model(spec: Spec | str | Path, head: str = "retinanet", input_size: InputSize | None = None, device="cpu",
                 *, pretrained: bool = False, in_chans: int = 3, **head_options) -> nn.Module:
    """Returns the whole model (`backbone`, a Backbone, and `head`) in eval mode with random weights.

    head: "retinanet" (the spec's head; keywords num_classes, num_anchors, num_convs, width, separable change it,
    checked as a spec file's head is), "classification" (a `Classifier`; keywords num_classes, 1 to 10000, default
    1000, and pooling 'gap', 'spp', 'spp_avg' or 'spp:LEVELS', default 'gap') or "none" (no keywords). A keyword
    given as None takes the default. input_size, pretrained, in_chans: as for `create_backbone`."""
    _check_timm_arguments(pretrained, in_chans)
    input_size = _checked_input_size(input_size)
    kind = _head_kind(head, head_options)
    spec = load_spec(spec)
    spec, options = _apply_head_options(spec, head, kind, head_options)
    model = build_model(spec, head, input_size, device, **options)
    backbone = Backbone(spec, input_size, device, module=model.backbone)
    if head == CLASSIFICATION:
        return Classifier(spec, backbone.input_size, backbone, model.head,
                          options.get("pooling", kind.options["pooling"]))
    model.backbone = backbone  # the same children: the state dict and module names do not change
    return model


# -- argument checks ---------------------------------------------------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_problem(name: str, value, low: int, high: int) -> str | None:
    """Returns one line when `value` is not an integer in [low, high] (the spec validator's wording), else None."""
    if _is_int(value) and value.bit_length() > 64:  # too long to print: Python refuses to write such an int
        return f"{name}: a {value.bit_length()}-bit integer is out of range [{low}, {high}]"
    problems = []
    check_int(problems, name, value, low, high)
    return problems[0] if problems else None


def _check_timm_arguments(pretrained, in_chans) -> None:
    if pretrained is not None and pretrained is not False:
        raise ValueError(f"pretrained={describe_value(pretrained)}: {PRETRAINED_HINT}")
    if not (_is_int(in_chans) and in_chans == IN_CHANNELS):
        raise ValueError(f"in_chans={describe_value(in_chans)}: the stem takes {IN_CHANNELS}-channel (RGB) images "
                         "only; repeat a 1-channel image to 3 channels (x.expand(-1, 3, -1, -1))")


def _checked_input_size(size) -> InputSize | None:
    """Returns the size normalized, or None for the spec's; raises ValueError for anything but a side, a (height,
    width) pair or "WIDTHxHEIGHT" text within the spec limits."""
    if size is None:
        return None
    low, high = LIMITS["min_input_size"], LIMITS["max_input_size"]
    if isinstance(size, str):
        return parse_size(size, low, high)
    pair = isinstance(size, (tuple, list))
    sides = tuple(size) if pair else (size,)
    if pair and len(sides) != 2:
        raise ValueError(f"input_size: must be a side or a (height, width) pair in pixels, got {describe_value(size)}")
    for side in sides:
        problem = _int_problem("input_size", side, low, high)
        if problem:
            raise ValueError(problem)
    return normalize(sides if pair else size)


def _allowed_options(kind) -> tuple[str, ...]:
    """The keywords a head takes: its own options, or (a head without its own options, such as RetinaNet, reads the
    spec's head) the spec's head fields; none without a head."""
    if kind is None:
        return ()
    return tuple(kind.options) or tuple(sorted(HEAD_FIELDS))


def _head_kind(head, given: dict):
    """Returns the HeadType (None for "none"); raises ValueError for an unknown head and TypeError for a keyword
    it does not take."""
    if not isinstance(head, str) or head not in head_names():
        raise ValueError(f"head: must be one of {', '.join(head_names())}, got {describe_value(head)}")
    kind = head_type(head)
    allowed = _allowed_options(kind)
    for key in given:
        if key not in allowed:
            takes = f"it takes {', '.join(allowed)}" if allowed else "it takes no options"
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"create_model() got an unexpected keyword argument {ascii(key)} for head {head!r} "
                            f"({takes}){hint}")
    return kind


def _apply_head_options(spec: Spec, head: str, kind, given: dict) -> tuple[Spec, dict]:
    """Returns (spec, options for build_model) with the given keywords (None: the default) checked within the spec
    limits: a head's own options go to it; the spec's head fields (RetinaNet) go into `spec.head`."""
    given = {key: value for key, value in given.items() if value is not None}
    if kind is None or not given:
        return spec, {}
    if kind.options:
        if "num_classes" in given:
            problem = _int_problem("num_classes", given["num_classes"], 1, LIMITS["max_num_classes"])
            if problem:
                raise ValueError(problem)
        if "pooling" in given:
            parse_pooling(given["pooling"])  # ValueError naming the pooling
        return spec, given
    for key, value in given.items():  # a number too long to print stops here, before the spec validator
        if _is_int(value) and value.bit_length() > 64:
            raise SpecError([f"head.{key}: a {value.bit_length()}-bit integer is out of range"])
    return check_spec(replace(spec, head=replace(spec.head, **given))), {}
