"""The backbone families, each in a module of its own that registers it (`spinenet.registry.register_family`)."""
from spinescope.spinenet.families import spinenet, mobile, resnet_fpn, resnet  # noqa: F401,I001 - registration order
