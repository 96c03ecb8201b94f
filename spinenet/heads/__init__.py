"""The heads on the backbone's features, each in a module of its own that registers it
(`spinenet.registry.register_head`)."""
from spinescope.spinenet.heads import retinanet, classification  # noqa: F401,I001 - registration order
