"""Specs, their validation, layout and description, and the PyTorch modules built from them.

The families and heads register themselves in `spinenet.registry` when imported; importing them here fills the
registry before any lookup, so the registry itself imports none of them.
"""
from spinescope.spinenet import families, heads  # noqa: F401 - registration
