"""The seeds of the search space, as block lists.

The paper starts from ResNet-50's blocks. ResNet-50 has 16 bottleneck blocks: 3 at L2, 4 at L3, 6 at L4, 3 at L5.
SpineNet-49 does NOT have the same counts per level: with its two stem blocks it has 17 blocks, 3 at L2, 2 at L3,
4 at L4, 4 at L5, 2 at L6, 2 at L7 (13 bottleneck, 4 residual): its levels and types came out of the search's
block adjustments (`tests/search/test_space.py` counts both). So the ResNet-50 seed is derived here, not copied:

- the first two L2 blocks are the fixed stem (stem0, stem1), as in SpineNet;
- the other 14 ResNet-50 blocks are the scale-permuted part: the last block of L3, L4 and L5 become the output
  blocks P3, P4, P5, the 11 others (1 x L2, 3 x L3, 5 x L4, 2 x L5) the intermediate blocks;
- P6 and P7 have no ResNet-50 block (ResNet-FPN makes them with two extra convs), so two output bottleneck blocks
  at L6 and L7 are added: 16 scale-permuted blocks, 5 of them outputs (the paper's (N-5)! 5! orders, N = 16).

That is 18 bottleneck blocks in all (56 weighted layers, 1 more block than SpineNet-49 and the paper's R0-SP53's
17, which the paper does not list block by block). The seed's own order (intermediate blocks by increasing level,
each block fed by the two blocks before it) is a scale-decreased network: the "no permutation" end of the space.
Scaling, head and input size are SpineNet-49's (endpoints 256, alpha 0.5, 640 x 640, a 4 x 256 RetinaNet head).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from spinescope.spinenet.spec import STEM_IDS, Block, Spec

RESNET50_BLOCKS = {2: 3, 3: 4, 4: 6, 5: 3}  # bottleneck blocks per level (torchvision's resnet50 layers 1-4)
SEED_RESNET50 = "resnet50"


@dataclass(frozen=True)
class Slot:
    """A block's content without its place: its level and type."""

    level: int
    block_fn: str


@dataclass(frozen=True)
class Template:
    """What a seed gives the space: its intermediate and output blocks (in the seed's order) and, per position of
    the running list [stem0, stem1, first block, ...], the positions of the seed's two parents."""

    intermediate: tuple[Slot, ...]
    outputs: tuple[Slot, ...]
    parents: tuple[tuple[int, int], ...]

    @property
    def size(self) -> int:
        return len(self.intermediate) + len(self.outputs)


def block_id(position: int) -> str:
    """Returns the id of the block at `position` of the running list (0 and 1 are the stem): 'b2', 'b3', ...,
    as SpineNet-49's blocks are named."""
    return STEM_IDS[position] if position < len(STEM_IDS) else f"b{position}"


def chain_parents(count: int) -> tuple[tuple[int, int], ...]:
    """Returns the parent positions of a plain chain of `count` blocks: each block reads the two before it."""
    return tuple((position - 2, position - 1) for position in range(2, 2 + count))


def resnet50_seed(base: Spec) -> Spec:
    """Returns the ResNet-50 seed (see the module docstring) with `base`'s scaling, head, levels and input size
    (SpineNet-49's when the caller passes it), named 'ResNet-50 seed'."""
    inter, outs = [], []
    for level, count in RESNET50_BLOCKS.items():
        blocks = count - (2 if level == 2 else 0)  # two L2 blocks are the stem
        if level >= 3:
            blocks -= 1  # the last block of the level is its output block
            outs.append(level)
        inter.extend([level] * blocks)
    outs.extend([6, 7])
    slots = [(level, False) for level in inter] + [(level, True) for level in outs]
    blocks = [Block(block_id(p + 2), level, "bottleneck", (block_id(a), block_id(b)), is_output)
              for p, ((level, is_output), (a, b)) in enumerate(zip(slots, chain_parents(len(slots))))]
    return replace(base, name="ResNet-50 seed", blocks=tuple(blocks))


def template_of(spec: Spec) -> Template:
    """Returns the Template of a SpineNet spec: its non-output blocks in order, then its output blocks in order (a
    candidate always puts the output blocks last, as the paper does), with each block's parents as positions in
    that order. A parent that would come after its block once the outputs are moved last is replaced by the two
    blocks before it."""
    ordered = [b for b in spec.blocks if not b.is_output] + [b for b in spec.blocks if b.is_output]
    position = {stem: i for i, stem in enumerate(STEM_IDS)}
    position.update({block.id: i + 2 for i, block in enumerate(ordered)})
    parents = []
    for i, block in enumerate(ordered):
        pair = tuple(position[p] for p in block.parents)
        parents.append(pair if max(pair) < i + 2 else (i, i + 1))
    return Template(tuple(Slot(b.level, b.block_fn) for b in ordered if not b.is_output),
                    tuple(Slot(b.level, b.block_fn) for b in ordered if b.is_output), tuple(parents))
