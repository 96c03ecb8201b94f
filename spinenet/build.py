"""spec -> PyTorch module: the one function that instantiates an architecture, from its description."""
from __future__ import annotations

import torch
from torch import nn

from spinescope.spinenet.describe import describe
from spinescope.spinenet.init import initialize
from spinescope.spinenet.modules import instantiate
from spinescope.spinenet.registry import NO_HEAD
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.input_size import InputSize


def build_model(spec: Spec, head: str = NO_HEAD, input_size: InputSize | None = None, device: str | torch.device = "cpu",
                **head_options) -> nn.Module:
    """Returns the model in eval mode on `device` ('meta' allocates no memory) with random weights drawn as the
    authors' code draws them (`spinenet.init`).

    head: "none" (backbone only: returns {"P3": tensor, ...}) or a registered head ('retinanet' uses the spec's
    head; 'classification' takes num_classes and pooling 'gap' or 'spp'). The structure is described for
    `input_size` (default: the spec's) pixels; the forward pass accepts other sizes. Submodules: `backbone` and
    `head` (None without one). Raises ValueError for an unknown head or option.
    """
    structure = describe(spec, input_size, head, **head_options)
    with torch.device("meta"):  # no memory and no PyTorch default init: every tensor is set once, below
        model = instantiate(structure.root)
    if torch.device(device).type == "meta":
        return model.eval()
    return initialize(structure.root, model.to_empty(device=device)).eval()


def build_backbone(spec: Spec, input_size: InputSize | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """Returns the backbone alone (the `backbone` of `build_model(spec, 'none', ...)`) in eval mode."""
    return build_model(spec, NO_HEAD, input_size, device).backbone
