"""spec file or name -> nn.Module, with its outputs described like timm's `feature_info` and detectron2's
`ShapeSpec`. See the package docstring for an example."""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

from torch import nn

from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.describe import describe
from spinescope.spinenet.formats import load_spec_file
from spinescope.spinenet.input_size import InputSize
from spinescope.spinenet.registry import NO_HEAD
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.validate import SpecError, check_spec


class ShapeSpec(NamedTuple):
    """One output, as detectron2's ShapeSpec: channels and stride (input pixels per output pixel, 2**level);
    height and width at the input size the backbone was described for (the forward pass accepts other sizes)."""

    channels: int
    stride: int
    height: int | None = None
    width: int | None = None


class FeatureInfo(list):
    """The outputs in order, as timm's `feature_info`: a list of {"module", "num_chs", "reduction", "level"}
    dicts with `channels()`, `reduction()` and `module_name()` lists."""

    def channels(self) -> list[int]:
        return [info["num_chs"] for info in self]

    def reduction(self) -> list[int]:
        return [info["reduction"] for info in self]

    def module_name(self) -> list[str]:
        return [info["module"] for info in self]


class Backbone(nn.Module):
    """A backbone: `forward(images)` returns an OrderedDict {"P3": tensor, ...}; `feature_info`, `output_shape()`,
    `spec` and `input_size` (the size the structure was described for) describe it. The module is `body`."""

    def __init__(self, spec: Spec, input_size: InputSize | None = None, device="cpu"):
        super().__init__()
        structure = describe(spec, input_size)
        self.spec, self.input_size = spec, structure.input_size
        self.body = build_model(spec, NO_HEAD, structure.input_size, device).backbone
        self._shapes = OrderedDict(
            (name, ShapeSpec(channels, 2 ** int(name[1:]), height, width))
            for name, (channels, height, width) in structure.features.items())
        self.feature_info = FeatureInfo(
            {"module": f"body.endpoints.{name}" if hasattr(self.body, "endpoints") else f"body.blocks.{name}",
             "num_chs": shape.channels, "reduction": shape.stride, "level": int(name[1:])}
            for name, shape in self._shapes.items())
        self.eval()

    def output_shape(self) -> dict[str, ShapeSpec]:
        """Returns {"P3": ShapeSpec(channels, stride, height, width), ...} (detectron2's Backbone.output_shape)."""
        return dict(self._shapes)

    def forward(self, images):
        return OrderedDict(self.body(images))


def load_spec(spec: Spec | str | Path) -> Spec:
    """Returns a Spec from a Spec (checked), a built-in name (e.g. "spinenet-49") or a .yaml/.json/.txt path.
    Raises SpecError with one line per problem (a name that is neither a built-in nor a file included)."""
    if isinstance(spec, Spec):
        return check_spec(spec)
    text = str(spec)
    if text.lower() in BUILTIN_NAMES:
        return load_builtin(text.lower())
    if not Path(text).is_file():
        raise SpecError([f"{ascii(text)}: not a built-in ({', '.join(BUILTIN_NAMES)}) and no such file"])
    return load_spec_file(text)


def create_backbone(spec: Spec | str | Path, input_size: InputSize | None = None, device="cpu") -> Backbone:
    """Returns the backbone of `spec` (see `load_spec`) in eval mode with random weights: P<min_level>..P<max_level>
    feature maps, with `feature_info` and `output_shape()`."""
    return Backbone(load_spec(spec), input_size, device)


def create_model(spec: Spec | str | Path, head: str = "retinanet", input_size: InputSize | None = None, device="cpu",
                 **head_options) -> nn.Module:
    """Returns the whole model (backbone and `head`: "retinanet", "classification" with num_classes and pooling,
    or "none") in eval mode with random weights."""
    return build_model(load_spec(spec), head, input_size, device, **head_options)
