"""spec -> PyTorch module: the one function that instantiates an architecture."""
from __future__ import annotations

import torch
from torch import nn

from spinenet.heads import ClassificationHead, RetinaNetHead
from spinenet.layout import resolve
from spinenet.resnet_fpn import ResNetFPN
from spinenet.spec import Spec
from spinenet.spinenet_backbone import SpineNetBackbone

HEADS = ("none", "retinanet", "classification")
POOLINGS = ("gap", "spp")


class Model(nn.Module):
    """Backbone plus optional head. Submodules: `backbone` and `head`."""

    def __init__(self, backbone: nn.Module, head: nn.Module | None):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: torch.Tensor):
        features = self.backbone(images)
        return features if self.head is None else self.head(features)


def build_backbone(spec: Spec, input_size: int | None = None) -> nn.Module:
    """Returns the backbone module (SpineNet, Mobile SpineNet or ResNet-FPN) for a valid spec."""
    layout = resolve(spec, input_size)
    return ResNetFPN(layout) if spec.family == "resnet_fpn" else SpineNetBackbone(layout)


def build_model(spec: Spec, head: str = "none", input_size: int | None = None, device: str | torch.device = "cpu",
                num_classes: int = 1000, pooling: str = "gap") -> Model:
    """Returns the model in eval mode on `device` ('meta' allocates no memory) with random weights.

    head: 'none' (backbone only), 'retinanet' (the spec's head) or 'classification' (`pooling` 'gap' or 'spp',
    `num_classes` outputs). The structure is built for `input_size` (default: the spec's) pixels.
    """
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; use one of {', '.join(HEADS)}")
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    levels = range(spec.min_level, spec.max_level + 1)
    width = spec.scaling.endpoints_num_filters
    with torch.device(device):
        backbone = build_backbone(spec, input_size)
        if head == "retinanet":
            h = spec.head
            head_module = RetinaNetHead(levels, width, h.num_convs, h.num_classes, h.num_anchors, h.separable,
                                        spec.activation)
        elif head == "classification":
            head_module = ClassificationHead(width, num_classes, pooling)
        else:
            head_module = None
        model = Model(backbone, head_module)
    return model.eval()
