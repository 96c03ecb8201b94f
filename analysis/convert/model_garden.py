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
    """What `convert` returns: our `state_dict` (name -> float32 numpy array; BN's num_batches_tracked as int64;
    names as in `build_model(spec, "retinanet" if with_head else "none")`), the spec it loads into (Model Garden
    semantics), the variables placed, notes (one line each), and whether the RetinaNet head is in it."""

    state_dict: dict[str, np.ndarray]
    spec: Spec
    placed: int
    notes: list[str] = field(default_factory=list)
    with_head: bool = False


def _layout(kind: str, array: np.ndarray) -> np.ndarray:
    """TF's layouts -> PyTorch's: a conv kernel (kh, kw, in, out) -> (out, in, kh, kw); a depthwise kernel (kh, kw,
    channels, 1) -> (channels, 1, kh, kw)."""
    if kind == "conv" and array.ndim == 4:
        return array.transpose(3, 2, 0, 1)
    if kind == "depthwise" and array.ndim == 4:
        return array.transpose(2, 3, 0, 1)
    return array


def expected_tensors(spec: Spec, head: str = "none") -> dict[str, tuple[int, ...]]:
    """Returns every tensor of our model's state dict (backbone, and `head`) with its shape, from the description
    (no torch)."""
    shapes = {}
    for layer in describe(spec, GRAPH_SIZE, head).root.walk():
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


_HEAD_KEY = re.compile(r"\A(?P<prefix>(?:.*/)?)head/(?P<path>.+)/\.ATTRIBUTES/VARIABLE_VALUE\Z")
# Model Garden's RetinaNetHead (official/vision/modeling/heads/dense_prediction_heads.py) -> our subnets.
_HEAD_PARTS = {"_cls_convs": ("class_net", "convs"), "_cls_norms": ("class_net", "norms"),
               "_classifier": ("class_net", "predict"), "_box_convs": ("box_net", "convs"),
               "_box_norms": ("box_net", "norms"), "_box_regressor": ("box_net", "predict")}


def _place_head(spec: Spec, path: str) -> tuple[str, str] | None:
    """Returns (our tensor name, array layout) for variable `path` under Model Garden's `head/`, or None. Its
    convs are shared across levels (`_cls_convs/<i>`), its norms per level (`_cls_norms/<level index>/<i>`); a
    separable conv (Mobile) is a depthwise kernel, a pointwise kernel and a bias (ours: `.0` and `.1`)."""
    parts = path.split("/")
    if parts[0] not in _HEAD_PARTS:
        return None
    net, role = _HEAD_PARTS[parts[0]]
    if role == "norms":
        if len(parts) != 4 or not (parts[1].isdigit() and parts[2].isdigit()) or parts[3] not in _BN:
            return None
        level = spec.min_level + int(parts[1])
        return f"head.{net}.norms.P{level}.{parts[2]}.{_BN[parts[3]][1]}", "vector"
    if role == "convs":
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        module, variable = f"head.{net}.convs.{parts[1]}", parts[2]
    else:
        if len(parts) != 2:
            return None
        module, variable = f"head.{net}.predict", parts[1]
    if spec.head.separable:
        table = {"depthwise_kernel": (".0.weight", "depthwise"), "pointwise_kernel": (".1.weight", "conv"),
                 "bias": (".1.bias", "vector")}
    else:
        table = {"kernel": (".weight", "conv"), "bias": (".bias", "vector")}
    entry = table.get(variable)
    return (module + entry[0], entry[1]) if entry else None


def _backbone_place(layers, key: str, index: int, path: str) -> tuple[str, str]:
    placed = _place(layers[index], path) if index < len(layers) else None
    if placed is None:
        raise ConversionError(f"cannot place {printable(key)}: the spec's Model Garden model has "
                              + (f"no variable {printable(path)} in its weighted layer {index} "
                                 f"({layers[index].kind}, our {layers[index].target})" if index < len(layers)
                                 else f"{len(layers)} weighted layers"))
    return placed


def _sorted_keys(variables: Mapping[str, np.ndarray], backbone_only: bool) -> tuple[dict, list[str], set[str]]:
    """Returns ({key: (part, match)} for the backbone's and head's variables, the other keys, the prefixes)."""
    placed, others, prefixes = {}, [], set()
    for key in sorted(variables):
        if _IGNORED.search(key):
            continue
        match = _KEY.match(key)
        head = None if match or backbone_only else _HEAD_KEY.match(key)
        if match or head:
            placed[key] = ("backbone", match) if match else ("head", head)
            prefixes.add((match or head)["prefix"])
        else:
            others.append(key)
    return placed, others, prefixes


def convert(variables: Mapping[str, np.ndarray], spec: Spec, backbone_only: bool = False) -> Conversion:
    """Returns the checkpoint's variables ({checkpoint key: array}, as `tf.train.load_checkpoint` reads them) as our
    state dict for `spec` under Model Garden semantics: the backbone's (`backbone.*`) and, where the checkpoint has
    a RetinaNet head (`head/...`), the spec's RetinaNet head's (`head.*`). Raises ConversionError (one line) for a
    variable it cannot place, a shape that differs, or a tensor of ours the checkpoint does not fill; other
    variables (a decoder's, ...) are refused too, unless `backbone_only` leaves out everything but the backbone
    (a note says how many)."""
    if spec.family not in FAMILIES:
        raise ConversionError(f"{printable(spec.name)}: family {spec.family} has no Model Garden checkpoint; "
                              f"use a spec of family {' or '.join(FAMILIES)}")
    notes = []
    if spec.semantics != "model_garden":
        spec = replace(spec, semantics="model_garden")
        notes.append("the spec is taken with semantics: model_garden (the checkpoint's)")
    notes.append(f"activation {spec.activation}: a checkpoint does not record it, so the spec's must be the "
                 "training config's (Model Garden's Mobile SpineNet configs use hard_swish)")
    keys, others, prefixes = _sorted_keys(variables, backbone_only)
    if len(prefixes) > 1:
        raise ConversionError(f"the checkpoint holds {len(prefixes)} models ({', '.join(sorted(prefixes))}); "
                              "convert one at a time")
    if others and backbone_only:
        notes.append(f"{len(others)} variables outside the backbone left out (e.g. {printable(others[0])})")
    elif others:
        raise ConversionError(f"cannot place {printable(others[0])}"
                              + (f" (and {len(others) - 1} more)" if len(others) > 1 else "")
                              + ": only a backbone and a RetinaNet head are converted (--backbone-only leaves the "
                                "rest out)")
    with_head = any(part == "head" for part, _ in keys.values())
    layers = checkpoint_layers(spec)
    expected = expected_tensors(spec, "retinanet" if with_head else "none")
    state: dict[str, np.ndarray] = {}
    for key, (part, match) in keys.items():
        if part == "backbone":
            name, kind = _backbone_place(layers, key, int(match["index"]), match["path"])
        else:
            placed = _place_head(spec, match["path"])
            if placed is None:
                raise ConversionError(f"cannot place {printable(key)}: no such variable in a RetinaNet head"
                                      + (" of separable convs" if spec.head.separable else ""))
            name, kind = placed
        array = _layout(kind, np.asarray(variables[key]))
        if name not in expected:
            raise ConversionError(f"cannot place {printable(key)}: our model has no tensor {name}")
        if tuple(array.shape) != expected[name]:
            raise ConversionError(f"shape of {printable(key)} is {tuple(array.shape)} in the checkpoint, "
                                  f"{expected[name]} for our {name} (a spec of other widths?)")
        state[name] = np.ascontiguousarray(array, dtype=np.float32)
    for name in expected:
        if name.endswith(".num_batches_tracked"):
            state[name] = np.zeros((), dtype=np.int64)
    missing = [name for name in expected if name not in state]
    if missing:
        raise ConversionError(f"the checkpoint has no variable for our {missing[0]}"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                              + "; is it the same architecture?")
    placed = len(state) - sum(name.endswith(".num_batches_tracked") for name in state)
    return Conversion({name: state[name] for name in expected}, spec, placed, notes, with_head)
