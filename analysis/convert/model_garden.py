"""The converter's core, without TensorFlow: Model Garden checkpoint variables {key: numpy array} -> our state dict.

Keys are placed by structure (`model_garden_graph.checkpoint_layers`: which weighted layer of Model Garden's
functional model `layer_with_weights-N` is), never by shape; a shape is only checked. Any variable of the backbone
that cannot be placed, any of our tensors left unfilled and any shape that differs is refused with one line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np

from spinescope.analysis.convert.model_garden_graph import GRAPH_SIZE, checkpoint_layers
from spinescope.spinenet.describe import describe
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.validate import printable

FAMILIES = ("spinenet", "spinenet_mobile")
_KEY = re.compile(r"\A(?P<prefix>(?:.*/)?)backbone/layer_with_weights-(?P<index>\d+)/(?P<path>.+)/\.ATTRIBUTES/"
                  r"VARIABLE_VALUE\Z")
# Checkpoint entries that are not model variables: the object graph, counters, optimizer state.
_IGNORED = re.compile(r"(\A_CHECKPOINTABLE_OBJECT_GRAPH\Z|/\.OPTIMIZER_SLOT/|\A(save_counter|global_step)/|"
                      r"\Aoptimizer/)")

# Variables of a Keras layer -> (our child under the layer's target, our tensor, how the array is laid out).
_BN = {"gamma": ("", "weight", "vector"), "beta": ("", "bias", "vector"),
       "moving_mean": ("", "running_mean", "vector"), "moving_variance": ("", "running_var", "vector")}
_PLAIN = {
    "conv": {"kernel": ("", "weight", "conv"), "bias": ("", "bias", "vector")},
    "depthwise_conv": {"depthwise_kernel": ("", "weight", "depthwise")},
    "batch_norm": _BN,
}
# Sub-layers of Model Garden's blocks (nn_blocks.py attribute names) -> our block's children.
_BLOCK_PARTS = {
    "bottleneck": {"_conv1": "conv1.0", "_norm1": "conv1.1", "_conv2": "conv2.0", "_norm2": "conv2.1",
                   "_conv3": "conv3.0", "_norm3": "conv3.1", "_shortcut": "shortcut.0", "_norm0": "shortcut.1"},
    "residual": {"_conv1": "conv1.0", "_norm1": "conv1.1", "_conv2": "conv2.0", "_norm2": "conv2.1",
                 "_shortcut": "shortcut.0", "_norm0": "shortcut.1"},
    "mbconv": {"_conv0": "expand.0", "_norm0": "expand.1", "_conv1": "depthwise.0", "_norm1": "depthwise.1",
               "_squeeze_excitation/_se_reduce": "se.reduce", "_squeeze_excitation/_se_expand": "se.expand",
               "_conv2": "project.0", "_norm2": "project.1"},
}


class ConversionError(ValueError):
    """A checkpoint that does not fit the spec: the message is one printable line."""


@dataclass
class Conversion:
    """What `convert` returns: our `state_dict` (name -> float32 numpy array; BN's num_batches_tracked as int64),
    the spec it loads into (Model Garden semantics), the variables placed, and notes (one line each)."""

    state_dict: dict[str, np.ndarray]
    spec: Spec
    placed: int
    notes: list[str] = field(default_factory=list)


def _layout(kind: str, array: np.ndarray) -> np.ndarray:
    """TF's layouts -> PyTorch's: a conv kernel (kh, kw, in, out) -> (out, in, kh, kw); a depthwise kernel (kh, kw,
    channels, 1) -> (channels, 1, kh, kw)."""
    if kind == "conv" and array.ndim == 4:
        return array.transpose(3, 2, 0, 1)
    if kind == "depthwise" and array.ndim == 4:
        return array.transpose(2, 3, 0, 1)
    return array


def expected_tensors(spec: Spec) -> dict[str, tuple[int, ...]]:
    """Returns every tensor of our backbone's state dict with its shape, from the description (no torch)."""
    shapes = {}
    for layer in describe(spec, GRAPH_SIZE).root.walk():
        a = layer.attrs
        if layer.kind == "conv":
            shapes[f"{layer.name}.weight"] = (a["out_channels"], a["in_channels"] // a["groups"], a["kernel"],
                                              a["kernel"])
            if a["bias"]:
                shapes[f"{layer.name}.bias"] = (a["out_channels"],)
        elif layer.kind == "batch_norm":
            for tensor in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{layer.name}.{tensor}"] = (a["channels"],)
            shapes[f"{layer.name}.num_batches_tracked"] = ()
    return shapes


def _place(layer, path: str) -> tuple[str, str] | None:
    """Returns (our tensor name, array layout) for variable `path` of Model Garden layer `layer`, or None."""
    if layer.kind in _PLAIN:
        entry = _PLAIN[layer.kind].get(path)
        return (f"{layer.target}.{entry[1]}", entry[2]) if entry else None
    parts = _BLOCK_PARTS.get(layer.kind, {})
    sublayer, _, variable = path.rpartition("/")
    if sublayer not in parts:
        return None
    table = _BN if "_norm" in sublayer else {"kernel": ("", "weight", "conv"), "bias": ("", "bias", "vector"),
                                             "depthwise_kernel": ("", "weight", "depthwise")}
    entry = table.get(variable)
    return (f"{layer.target}.{parts[sublayer]}.{entry[1]}", entry[2]) if entry else None


def convert(variables: Mapping[str, np.ndarray], spec: Spec, backbone_only: bool = False) -> Conversion:
    """Returns the checkpoint's backbone variables ({checkpoint key: array}, as `tf.train.load_checkpoint` reads
    them) as our state dict for `spec` under Model Garden semantics. Raises ConversionError (one line) for a
    variable it cannot place, a shape that differs, or a tensor of ours the checkpoint does not fill; variables
    outside the backbone (a detector's head) are refused too, unless `backbone_only` leaves them out (a note says
    how many)."""
    if spec.family not in FAMILIES:
        raise ConversionError(f"{printable(spec.name)}: family {spec.family} has no Model Garden checkpoint; "
                              f"use a spec of family {' or '.join(FAMILIES)}")
    notes = []
    if spec.semantics != "model_garden":
        spec = replace(spec, semantics="model_garden")
        notes.append("the spec is taken with semantics: model_garden (the checkpoint's)")
    layers = checkpoint_layers(spec)
    expected = expected_tensors(spec)
    state: dict[str, np.ndarray] = {}
    prefixes, others = set(), []
    for key in sorted(variables):
        if _IGNORED.search(key):
            continue
        match = _KEY.match(key)
        if match is None:
            others.append(key)
            continue
        prefixes.add(match["prefix"])
        index, path = int(match["index"]), match["path"]
        placed = _place(layers[index], path) if index < len(layers) else None
        if placed is None:
            raise ConversionError(f"cannot place {printable(key)}: the spec's Model Garden model has "
                                  + (f"no variable {printable(path)} in its weighted layer {index} "
                                     f"({layers[index].kind}, our {layers[index].target})" if index < len(layers)
                                     else f"{len(layers)} weighted layers"))
        name, kind = placed
        array = _layout(kind, np.asarray(variables[key]))
        if name not in expected:
            raise ConversionError(f"cannot place {printable(key)}: our model has no tensor {name}")
        if tuple(array.shape) != expected[name]:
            raise ConversionError(f"shape of {printable(key)} is {tuple(array.shape)} in the checkpoint, "
                                  f"{expected[name]} for our {name} (a spec of other widths?)")
        state[name] = np.ascontiguousarray(array, dtype=np.float32)
    if len(prefixes) > 1:
        raise ConversionError(f"the checkpoint holds {len(prefixes)} backbones ({', '.join(sorted(prefixes))}); "
                              "convert one at a time")
    if others and backbone_only:
        notes.append(f"{len(others)} variables outside the backbone left out (e.g. {printable(others[0])})")
    elif others:
        raise ConversionError(f"cannot place {printable(others[0])}"
                              + (f" (and {len(others) - 1} more variables outside the backbone)" if len(others) > 1
                                 else "") + ": only the backbone is converted (--backbone-only leaves the rest out)")
    for name, shape in expected.items():
        if name.endswith(".num_batches_tracked"):
            state[name] = np.zeros((), dtype=np.int64)
    missing = [name for name in expected if name not in state]
    if missing:
        raise ConversionError(f"the checkpoint has no variable for our {missing[0]}"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                              + "; is it the same architecture?")
    placed = len(state) - sum(name.endswith(".num_batches_tracked") for name in state)
    return Conversion({name: state[name] for name in expected}, spec, placed, notes)
