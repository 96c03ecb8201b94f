"""The RetinaNet head of the paper: a class subnet (num_classes x anchors outputs) and a box subnet (4 x anchors
outputs), each `num_convs` 3x3 convs of the spec's head width shared across levels (the first from the endpoint
width, which may be wider) with a per-level BN and activation, then a 3x3 predictor.
Separable (Mobile): each 3x3 conv is a 3x3 depthwise (no bias) then a 1x1 pointwise with bias (Keras
SeparableConv2D).

Initialization as the authors' head: the subnets' convs N(0, 0.01), the predictors N(0, 1e-5), biases 0 except the
class predictor's, -log((1 - p) / p) for a prior foreground probability p = 0.01 (the focal loss paper's), so that
the loss does not start dominated by the many background anchors. Separable convs take Keras's default (glorot
uniform) kernels, as the authors' separable head does."""
from __future__ import annotations

from spinescope.spinenet.registry import HeadType, register_head
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.structure import Describer, Layer, Shape

TOWER_STD, PREDICT_STD = 0.01, 1e-5  # the kernels' normal std in the subnets' convs and in the predictors
PRIOR_PROBABILITY = 0.01  # the class predictor's starting foreground probability


def _add_head_conv(d: Describer, name: str, in_channels: int, out_channels: int, separable: bool, std: float,
                   prior: float | None = None) -> Layer:
    bias_init = {"prior": prior} if prior is not None else {}
    if not separable:
        return d.add(name, "conv", in_channels=in_channels, out_channels=out_channels, kernel=3, stride=1,
                     padding=1, groups=1, bias=True, init="normal", std=std, **bias_init)
    with d.module(name, "sequential") as layer:
        d.add("0", "conv", in_channels=in_channels, out_channels=in_channels, kernel=3, stride=1, padding=1,
              groups=in_channels, bias=False, init="glorot_uniform")
        d.add("1", "conv", in_channels=in_channels, out_channels=out_channels, kernel=1, stride=1, padding=0,
              groups=1, bias=True, init="glorot_uniform", **bias_init)
    return layer


def _call_head_conv(d: Describer, layer: Layer, x: Shape) -> Shape:
    for leaf in layer.children or [layer]:
        x = d.call(leaf, x)
    return x


def describe_subnet(d: Describer, name: str, features: dict[str, Shape], width: int, num_convs: int,
                    out_channels: int, separable: bool, activation: str, prior: float | None = None) -> None:
    """Convs registered once and run once per level; per-level BNs. The first conv goes from the features'
    channels to `width` (the same when the head is as wide as the endpoints). `prior`: the predictor's bias starts
    at the logit of this probability (else 0)."""
    in_channels = next(iter(features.values()))[0]
    with d.module(name, "subnet"):
        with d.module("convs", "list"):
            convs = [_add_head_conv(d, str(index), in_channels if index == 0 else width, width, separable,
                                    TOWER_STD) for index in range(num_convs)]
        with d.module("norms", "dict"):
            norms = {}
            for level in features:
                with d.module(level, "list"):
                    norms[level] = [d.add(str(index), "batch_norm", channels=width) for index in range(num_convs)]
        act = d.add("act", "activation", function=activation)
        predict = _add_head_conv(d, "predict", width if num_convs else in_channels, out_channels, separable,
                                 PREDICT_STD, prior)
        for level, x in features.items():
            for conv, norm in zip(convs, norms[level]):
                x = d.call(act, d.call(norm, _call_head_conv(d, conv, x)))
            _call_head_conv(d, predict, x)


def describe(d: Describer, spec: Spec, features: dict[str, Shape]) -> None:
    head, width = spec.head, spec.head.width  # the subnets' width; the features' channels feed the first conv
    with d.module("head", "retinanet_head"):
        describe_subnet(d, "class_net", features, width, head.num_convs, head.num_classes * head.num_anchors,
                        head.separable, spec.activation, PRIOR_PROBABILITY)
        describe_subnet(d, "box_net", features, width, head.num_convs, 4 * head.num_anchors, head.separable,
                        spec.activation)


register_head(HeadType("retinanet", "RetinaNet (as in the paper)", describe))
