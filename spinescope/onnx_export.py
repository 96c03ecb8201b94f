"""A module -> ONNX, with its own weights and, by default, any batch size, height and width.

    import spinescope
    backbone = spinescope.create_backbone("spinenet-49")       # ... trained
    spinescope.export_onnx(backbone, "spinenet-49.onnx")        # input "images", outputs "P3".."P7"

The graph comes from torch.onnx's TorchScript exporter (`dynamo=False`), which needs only the `onnx` package. It
traces the forward once, at `input_size`, inside `spinenet.layers.dynamic_shapes()`: there the forwards compute
every size that depends on the input (level-l maps of ceil(H / 2**l) x ceil(W / 2**l), the SAME max-pools' padding,
the resampling plan's pools and nearest resizes) from tensor shapes, with the plan's choices as data, so that the
trace records that arithmetic and the graph is right at every size, not only at the traced one. The dynamo exporter
(torch.export) would need onnxscript, and there those choices (a pool or none, stride 2 or 4) are branches on the
symbolic sizes: torch.export refuses a dynamic height and width ("Constraints violated").
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

from spinescope.spinenet.layers import dynamic_shapes

__all__ = ["export_onnx", "dynamic_shapes"]

DEFAULT_INPUT_SIZE = 256  # pixels, when the module does not say which size it was described for
_BOX_PARTS = ("class", "box")  # the RetinaNet head's (class logits, box deltas) per level


def export_onnx(module, path_or_file=None, *, input_size=None, dynamic: bool = True, opset: int = 17,
                batch_size: int = 1, output_names: list[str] | None = None, export_params: bool = True):
    """Exports `module` (a Backbone from `spinescope.create_backbone`, a model from `spinescope.create_model`, or
    any module taking one [N, 3, H, W] image tensor) as it is, weights included, in inference mode (batch norms use
    their running statistics; the module's own mode is restored afterwards). The input is named "images".

    input_size: the example input's side or (height, width) in pixels (default: the size the module was described
    for, else 256); dynamic: batch, height and width are free in the graph (else fixed at the example's, a smaller
    graph); opset: the ONNX opset; output_names: default "P3".."P7" (the feature levels) for a backbone, "P3_class",
    "P3_box", ... with the RetinaNet head, "logits" with the classification head; export_params: False leaves the
    weights out (the graph alone).

    Returns the ONNX file's bytes when `path_or_file` is None or a binary file object (written to), else writes the
    path and returns it as a Path. Raises ImportError (one line) without the onnx package, ValueError for a module
    whose graph cannot follow the input size (a spatial-pyramid pooling head: export it with dynamic=False)."""
    from spinescope.extras import require

    require("onnx")
    import torch

    from spinescope.spinenet.input_size import hw

    if dynamic:
        _check_dynamic(module)
    height, width = hw(input_size if input_size is not None else getattr(module, "input_size", None)
                       or DEFAULT_INPUT_SIZE)
    parameter = next(module.parameters(), None)
    images = torch.zeros(batch_size, 3, height, width, device=parameter.device if parameter is not None else "cpu")
    axes = None
    if output_names is None or dynamic:  # the outputs' structure (names) and ranks (dynamic axes)
        with torch.no_grad(), _eval(module):
            sample = module(images)
        names = output_names or _output_names(module, sample)
        flat = flat_outputs(sample)
        if len(names) != len(flat):
            raise ValueError(f"{len(names)} output names for the module's {len(flat)} outputs")
        if dynamic:
            axes = {"images": {0: "batch", 2: "height", 3: "width"}}
            for name, tensor in zip(names, flat):  # each output's own names: P3's height is not P4's
                axes[name] = {0: "batch", **({2: f"{name}_height", 3: f"{name}_width"} if tensor.dim() == 4 else {})}
    else:
        names = list(output_names)
    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught, torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("always")
        with dynamic_shapes(dynamic):
            torch.onnx.export(module, (images,), buffer, dynamo=False, opset_version=opset, input_names=["images"],
                              output_names=names, dynamic_axes=axes, export_params=export_params,
                              do_constant_folding=True, keep_initializers_as_inputs=False,
                              training=torch.onnx.TrainingMode.EVAL)
    frozen = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    if dynamic and frozen:  # a value the trace took as a constant: the graph may be wrong at other sizes
        warnings.warn(f"export_onnx: the trace took a value of the input as a constant "
                      f"({str(frozen[0].message)[:200]}); the graph may be right only at {height}x{width}",
                      stacklevel=2)
    data = buffer.getvalue()
    if path_or_file is None:
        return data
    if hasattr(path_or_file, "write"):
        path_or_file.write(data)
        return data
    path = Path(os.fspath(path_or_file))
    path.write_bytes(data)
    return path


class _eval:
    """The module in eval mode within, its own mode after."""

    def __init__(self, module):
        self.module, self.training = module, module.training

    def __enter__(self):
        self.module.eval()

    def __exit__(self, *exc):
        self.module.train(self.training)
        return False


def _check_dynamic(module) -> None:
    """Raises ValueError for adaptive pooling to more than one bin (the SPP heads): the exporter makes it a pool
    with the example size's kernel, wrong at other sizes."""
    from torch import nn

    for name, child in module.named_modules():
        if isinstance(child, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            bins = child.output_size
            if any(b not in (1, None) for b in (bins if isinstance(bins, tuple) else (bins,))):
                raise ValueError(f"{name or type(module).__name__}: adaptive pooling to {bins} bins has no ONNX form "
                                 f"that follows the input size; export with dynamic=False (the example's size)")


def flat_outputs(value) -> list:
    """A model's outputs in the order torch.onnx flattens them (dicts by insertion, then lists and tuples)."""
    if isinstance(value, dict):
        return [tensor for item in value.values() for tensor in flat_outputs(item)]
    if isinstance(value, (list, tuple)):
        return [tensor for item in value for tensor in flat_outputs(item)]
    return [value]


def _output_names(module, value, prefix: str = "") -> list[str]:
    """Names from the outputs' structure: dict keys ("P3"), RetinaNet's per-level pairs "P3_class" and "P3_box",
    list items by index; one tensor alone is "logits" (the classification head) or "output"."""
    head = getattr(module, "head", None)
    if isinstance(value, dict):
        return [name for key, item in value.items() for name in _output_names(module, item, f"{prefix}{key}")]
    if isinstance(value, (list, tuple)):
        parts = _BOX_PARTS if len(value) == 2 and hasattr(head, "box_net") else [str(i) for i in range(len(value))]
        return [name for part, item in zip(parts, value)
                for name in _output_names(module, item, f"{prefix}_{part}" if prefix else part)]
    if prefix:
        return [prefix]
    return ["logits" if hasattr(head, "fc") else "output"]
