"""torchvision's RetinaNet and FCOS with a SpineScope backbone: anchors on the spec's own output levels (P2-P7
too), the backbone initialized as the authors' code initializes it (`spinenet.init`), RetinaNet's head
initialized as theirs (torchvision's head) or the authors' head itself (`spec_head=True`).

    import spinescope.detection as detection
    model = detection.retinanet("spinenet-49", num_classes=91).train()
    losses = model(images, targets)        # {"classification": ..., "bbox_regression": ...}

Needs torchvision (`pip install 'spinescope[detection]'`), imported on first use.
"""
from __future__ import annotations

import difflib
import inspect
import numbers
from pathlib import Path

import torch
from torch import Tensor, nn

from spinescope.spinenet.describe import describe
from spinescope.spinenet.heads.retinanet import PREDICT_STD, PRIOR_PROBABILITY, TOWER_STD
from spinescope.spinenet.init import init_conv
from spinescope.spinenet.input_size import InputSize, hw
from spinescope.spinenet.spec import Spec

MAX_CLASSES = 100_000
ASPECT_RATIOS = (0.5, 1.0, 2.0)  # height / width in torchvision; the set is the same either way round
NUM_SCALES = 3  # anchor sizes per level: anchor_size * 2**level * 2**(i / 3), i = 0, 1, 2
INSTALL_HINT = "torchvision is not installed: pip install 'spinescope[detection]'"
# Taken by torchvision's GeneralizedRCNNTransform through the detectors' **kwargs, which it does not check.
TRANSFORM_KWARGS = ("size_divisible", "fixed_size", "_skip_resize")


def _torchvision_detection():
    try:
        from torchvision.models import detection
    except ModuleNotFoundError as error:
        if error.name not in ("torchvision", "torchvision.models"):  # a module torchvision itself failed to find
            raise
        raise ModuleNotFoundError(INSTALL_HINT) from None
    return detection


def check_num_classes(num_classes) -> int:
    """Returns `num_classes` as an int; raises ValueError unless it is an integer from 1 to MAX_CLASSES."""
    if (isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral)
            or not 1 <= num_classes <= MAX_CLASSES):
        raise ValueError(f"num_classes must be an integer from 1 to {MAX_CLASSES}, got {num_classes!r:.40}")
    return int(num_classes)


def check_kwargs(function: str, detector: type, kwargs: dict) -> None:
    """Raises TypeError naming every key of `kwargs` that torchvision's `detector` does not take (its own keyword
    arguments and its transform's): torchvision passes unknown ones on to its transform, which drops them."""
    taken = [name for name in inspect.signature(detector.__init__).parameters
             if name not in ("self", "backbone", "num_classes", "kwargs")] + list(TRANSFORM_KWARGS)
    unknown = [key for key in kwargs if key not in taken]
    if unknown:
        hints = [f"{ascii(key)[:60]} (did you mean {close[0]!r}?)"
                 if (close := difflib.get_close_matches(key, taken, 1)) else ascii(key)[:60] for key in unknown]
        raise TypeError(f"{function}() got unexpected keyword argument(s) {', '.join(hints)}; torchvision's "
                        f"{detector.__name__} takes {', '.join(taken)}")


def _check_anchor_size(anchor_size) -> float:
    if isinstance(anchor_size, bool) or not isinstance(anchor_size, numbers.Real) or not 0 < anchor_size <= 1e4:
        raise ValueError(f"anchor_size must be a number above 0 and at most 10000, got {anchor_size!r:.40}")
    return float(anchor_size)


def _parts(spec: Spec | str | Path, input_size: InputSize | None,
           **head_options) -> tuple[nn.Module, nn.Module | None, list[int], dict]:
    """Returns (backbone, head, levels, transform options): `spinescope.create_model(spec, "retinanet",
    input_size, **head_options)`'s backbone, with `out_channels` (torchvision's detectors read it), and head (None
    without head_options: the backbone is then built alone); its output levels in order, e.g. [3, 4, 5, 6, 7];
    images resized to the size it was described for (torchvision's default is 800-1333 pixels) and padded to a
    multiple of the coarsest output's stride, so that every level's anchors have its exact stride. Raises
    ValueError where the outputs differ in width (torchvision's heads share their convs across levels)."""
    from spinescope import create_backbone, create_model, load_spec

    spec = load_spec(spec)
    structure = describe(spec, input_size)
    widths = sorted({channels for channels, _, _ in structure.features.values()})
    if len(widths) != 1:
        raise ValueError(f"torchvision's detectors need one width for all outputs, got {widths}")
    if head_options:
        model = create_model(spec, "retinanet", structure.input_size, **head_options)
        backbone, head = model.backbone, model.head
    else:
        backbone, head = create_backbone(spec, structure.input_size), None
    if getattr(backbone, "out_channels", None) is None:
        backbone.out_channels = widths[0]
    levels = [int(name[1:]) for name in structure.features]
    height, width = hw(structure.input_size)
    return backbone.train(), head, levels, {"min_size": min(height, width), "max_size": max(height, width),
                                            "size_divisible": 2 ** max(levels)}


def retinanet_anchors(levels: list[int], anchor_size: float = 3.0):
    """Returns torchvision's AnchorGenerator with Model Garden's RetinaNet anchors on `levels`: sizes
    anchor_size * 2**level * 2**(i / 3) for i = 0, 1, 2 and aspect ratios 0.5, 1, 2 (9 per location)."""
    detection = _torchvision_detection()
    sizes = tuple(tuple(anchor_size * 2 ** level * 2 ** (i / NUM_SCALES) for i in range(NUM_SCALES))
                  for level in levels)
    return detection.anchor_utils.AnchorGenerator(sizes, (ASPECT_RATIOS,) * len(levels))


def _per_anchor(x: Tensor, width: int) -> Tensor:
    """[N, A * width, H, W] -> [N, H * W * A, width], torchvision's order (location, then anchor)."""
    n, _, h, w = x.shape
    return x.view(n, -1, width, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, width)


class SpecRetinaNetHead(nn.Module):
    """The spec's own RetinaNet head (`class_net`, `box_net`: convs shared across levels, a BN per level and conv,
    initialized as the authors' head) behind torchvision's RetinaNetHead interface: `forward(maps)` returns
    {"cls_logits": [N, HWA, K], "bbox_regression": [N, HWA, 4]} over the levels in order, and `compute_loss` is
    torchvision's (sigmoid focal loss, L1 on the box deltas). Its state-dict keys are those of
    `create_model(spec, "retinanet").head`."""

    def __init__(self, head: nn.Module, levels: list[int], num_classes: int):
        super().__init__()
        from torchvision.models.detection import _utils as det_utils

        self.class_net, self.box_net = head.class_net, head.box_net
        self.levels = [f"P{level}" for level in levels]
        self.num_classes = num_classes
        # Read by torchvision's loss functions, which `compute_loss` calls with this head as their `self`.
        self.BETWEEN_THRESHOLDS = det_utils.Matcher.BETWEEN_THRESHOLDS
        self.box_coder = det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self._loss_type = "l1"

    def forward(self, maps: list[Tensor]) -> dict[str, Tensor]:
        if len(maps) != len(self.levels):
            raise ValueError(f"the head takes {len(self.levels)} maps ({', '.join(self.levels)}), got {len(maps)}")
        pairs = [(self.class_net(x, level), self.box_net(x, level)) for level, x in zip(self.levels, maps)]
        return {"cls_logits": torch.cat([_per_anchor(logits, self.num_classes) for logits, _ in pairs], dim=1),
                "bbox_regression": torch.cat([_per_anchor(deltas, 4) for _, deltas in pairs], dim=1)}

    def compute_loss(self, targets, head_outputs, anchors, matched_idxs) -> dict[str, Tensor]:
        from torchvision.models.detection.retinanet import RetinaNetClassificationHead, RetinaNetRegressionHead

        return {"classification": RetinaNetClassificationHead.compute_loss(self, targets, head_outputs, matched_idxs),
                "bbox_regression": RetinaNetRegressionHead.compute_loss(self, targets, head_outputs, anchors,
                                                                        matched_idxs)}


def reference_retinanet_head(in_channels: int, num_anchors: int, num_classes: int) -> nn.Module:
    """Returns torchvision's RetinaNetHead initialized as the authors' RetinaNet head: tower convs N(0, 0.01) (as
    torchvision's), both predictors N(0, 1e-5) (torchvision: 0.01), biases 0 except the class predictor's,
    -log(99) (a foreground prior of 0.01, as torchvision's)."""
    head = _torchvision_detection().retinanet.RetinaNetHead(in_channels, num_anchors, num_classes)
    for subnet in (head.classification_head, head.regression_head):
        for conv in subnet.conv.modules():
            if isinstance(conv, nn.Conv2d):
                init_conv(conv, {"init": "normal", "std": TOWER_STD})
    init_conv(head.classification_head.cls_logits, {"init": "normal", "std": PREDICT_STD, "prior": PRIOR_PROBABILITY})
    init_conv(head.regression_head.bbox_reg, {"init": "normal", "std": PREDICT_STD})
    return head


def retinanet(spec: Spec | str | Path, num_classes: int, *, input_size: InputSize | None = None,
              anchor_size: float = 3.0, spec_head: bool = False, **torchvision_kwargs) -> nn.Module:
    """Returns torchvision's RetinaNet (in training mode) with the backbone of `spec` (a Spec, built-in name or
    path), Model Garden's anchors on the spec's output levels (`retinanet_anchors`) and a head for `num_classes`
    classes and 9 anchors per location: torchvision's RetinaNetHead initialized as the authors'
    (`reference_retinanet_head`: 4 convs as wide as the outputs, no normalization), or with spec_head=True the
    spec's own head (`SpecRetinaNetHead`: the authors' head, the spec's convs and width with a BN per level and
    conv; its weights are `create_model(spec, "retinanet")`'s; its BNs need a few values per channel, so not at 2
    images with 1 x 1 maps). Images are resized to `input_size` (default: the spec's) unless min_size/max_size say
    otherwise. Other keyword arguments go to torchvision's RetinaNet (`anchor_generator` and `head` replace ours).
    Raises ValueError for a bad num_classes or anchor_size, TypeError for a keyword torchvision does not take,
    ModuleNotFoundError without torchvision."""
    detection = _torchvision_detection()
    num_classes = check_num_classes(num_classes)
    anchor_size = _check_anchor_size(anchor_size)
    check_kwargs("retinanet", detection.RetinaNet, torchvision_kwargs)
    if not isinstance(spec_head, bool):
        raise TypeError(f"spec_head must be True or False, got {spec_head!r:.40}")
    anchors = torchvision_kwargs.pop("anchor_generator", None)
    head = torchvision_kwargs.pop("head", None)
    num_anchors = anchors.num_anchors_per_location()[0] if anchors is not None else len(ASPECT_RATIOS) * NUM_SCALES
    head_options = {"num_classes": num_classes, "num_anchors": num_anchors} if spec_head and head is None else {}
    backbone, built_head, levels, transform = _parts(spec, input_size, **head_options)
    anchors = anchors or retinanet_anchors(levels, anchor_size)
    if head is None:
        head = (SpecRetinaNetHead(built_head, levels, num_classes) if spec_head
                else reference_retinanet_head(backbone.out_channels, num_anchors, num_classes))
    options = {**transform, **torchvision_kwargs}
    return detection.RetinaNet(backbone, num_classes, anchor_generator=anchors, head=head, **options).train()


def fcos(spec: Spec | str | Path, num_classes: int, *, input_size: InputSize | None = None,
         **torchvision_kwargs) -> nn.Module:
    """Returns torchvision's FCOS (in training mode) with the backbone of `spec`: one anchor point per location on
    each of the spec's output levels (size 2**level, FCOS's), torchvision's FCOS head with its own (the FCOS
    paper's) initialization. Images and keyword arguments as in `retinanet`; the same errors."""
    detection = _torchvision_detection()
    num_classes = check_num_classes(num_classes)
    check_kwargs("fcos", detection.FCOS, torchvision_kwargs)
    backbone, _, levels, transform = _parts(spec, input_size)
    anchors = torchvision_kwargs.pop("anchor_generator", None) or detection.anchor_utils.AnchorGenerator(
        tuple((2 ** level,) for level in levels), ((1.0,),) * len(levels))
    head = torchvision_kwargs.pop("head", None) or detection.fcos.FCOSHead(
        backbone.out_channels, anchors.num_anchors_per_location()[0], num_classes)
    options = {**transform, **torchvision_kwargs}
    return detection.FCOS(backbone, num_classes, anchor_generator=anchors, head=head, **options).train()
