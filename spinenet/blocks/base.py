"""What every block type shares: its registration (`register_block`, `BLOCK_TYPES`), a group of repeated blocks,
and the residual shortcut."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from spinescope.spinenet.structure import Describer, Shape


@dataclass(frozen=True)
class BlockType:
    """A residual-style block: `expansion` x width output channels; `describe` adds one block."""

    name: str
    expansion: int
    describe: Callable
    summary: str

    def out_channels(self, width: int) -> int:
        """Returns the block's output channels for a 3x3 width of `width`."""
        return self.expansion * width


BLOCK_TYPES: dict[str, BlockType] = {}


def register_block(name: str, expansion: int, summary: str):
    """Decorator for a block type's describe function: registers the type under `name`."""
    def register(describe):
        if name in BLOCK_TYPES:
            raise ValueError(f"block type {name!r} registered twice")
        BLOCK_TYPES[name] = BlockType(name, expansion, describe, summary)
        return describe
    return register


def block_type(name: str) -> BlockType:
    """Returns the registered block type `name`; raises KeyError for an unknown one."""
    try:
        return BLOCK_TYPES[name]
    except KeyError:
        raise KeyError(f"unknown block type {name!r}; known: {', '.join(BLOCK_TYPES)}") from None


def describe_block_group(d: Describer, name: str, block_fn: str, in_channels: int, width: int, repeats: int,
                         stride: int, activation: str, x: Shape) -> Shape:
    """Adds `repeats` blocks of type `block_fn` as Sequential `name`; only the first changes channels or stride."""
    kind = block_type(block_fn)
    with d.module(name, "sequential"):
        for index in range(repeats):
            x = kind.describe(d, str(index), in_channels if index == 0 else kind.out_channels(width), width,
                              stride if index == 0 else 1, activation, x)
    return x


def describe_shortcut(d: Describer, in_channels: int, out_channels: int, stride: int, x: Shape) -> None:
    """A residual shortcut: 1x1 conv + BN where channels or stride change, else an identity."""
    if in_channels != out_channels or stride != 1:
        d.conv_bn_act("shortcut", in_channels, out_channels, 1, x, stride, activation=None)
    else:
        d.call(d.add("shortcut", "identity"), x)
