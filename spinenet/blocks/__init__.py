"""Block types: each registers once (name, channel expansion, describe and forward) in a module of its own.

A block type's module gives `describe(d, name, in_channels, width, stride, activation, x) -> Shape`, which adds
the block as container `name` to the Describer `d`; its module class (torch) is in `spinenet.blocks.modules`.
Adding a block type is one new module here, imported below, its class there, plus its tests.
"""
from __future__ import annotations

from spinescope.spinenet.blocks.base import (BLOCK_TYPES, BlockType, block_type,  # noqa: F401 - the package's API
                                             describe_block_group, describe_shortcut, register_block)

# The block types (imported for their registration).
from spinescope.spinenet.blocks import bottleneck, residual, mbconv  # noqa: E402,F401,I001 - registration order
