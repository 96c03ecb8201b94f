"""SpineScope's Python API: a spec (a `Spec`, a built-in name or a .yaml/.json/.txt file) -> a PyTorch module.

    import spinescope
    backbone = spinescope.create_backbone("spinenet-49")        # or a path, or a Spec (e.g. after spinenet.edits)
    features = backbone(images)                                 # {"P3": tensor, ..., "P7": tensor}
    backbone.feature_info.channels()                            # [256, 256, 256, 256, 256] (timm's feature_info)
    backbone.feature_info.reduction()                           # [8, 16, 32, 64, 128]
    backbone.output_shape()                                     # {"P3": ShapeSpec(channels=256, stride=8), ...}
    model = spinescope.create_model("spinenet-49s", head="classification", num_classes=10, pooling="spp")

Modules come back in eval mode with random weights (call `.train()` to train them). Channels and strides are read
from the described structure (`spinenet.describe`), the same one the module is built from.
"""
from spinescope.api import Backbone, FeatureInfo, ShapeSpec, create_backbone, create_model, load_spec

__all__ = ["Backbone", "FeatureInfo", "ShapeSpec", "create_backbone", "create_model", "load_spec"]
