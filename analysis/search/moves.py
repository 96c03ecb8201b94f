"""Mutation: one move of one kind, as regularized evolution applies it (Real et al. 2019: mutate one thing).

- permute: two intermediate blocks (or two output blocks) exchange places: their levels and types swap, every
  block keeps the parents of its position;
- parents: one parent of one block is replaced by another block before it (or a stem block), never its other parent;
- levels: one intermediate block moves its level by -1, +1 or +2 within L2-L7;
- types: one block changes from bottleneck to residual or back.

Each move changes exactly that and nothing else (`tests/search/test_moves.py`). A move returns a candidate that
may break the constraints; `mutate` draws moves until one is admissible.
"""
from __future__ import annotations

import random

from spinescope.analysis.search.seed import Slot
from spinescope.analysis.search.space import (BLOCK_LEVELS, DEFAULT_ATTEMPTS, Space, SpaceError, admit,
                                              build_candidate, parents_of, slots_of)
from spinescope.spinenet.spec import Spec


class NoMove(ValueError):
    """The move cannot change this candidate (e.g. every intermediate block is alike)."""


def move_permute(spec: Spec, space: Space, rng: random.Random) -> tuple[Spec, str]:
    """Returns (candidate, description) with two blocks of the same group (intermediate or output) of different
    content swapped."""
    slots, parents = slots_of(spec), parents_of(spec)
    split = len(slots) - len(space.template.outputs)
    pairs = [(i, j) for lo, hi in ((0, split), (split, len(slots))) for i in range(lo, hi) for j in range(i + 1, hi)
             if slots[i] != slots[j]]
    if not pairs:
        raise NoMove("every block of each group is alike")
    i, j = rng.choice(pairs)
    slots[i], slots[j] = slots[j], slots[i]
    return build_candidate(space, slots, parents), f"permute: swap b{i + 2} and b{j + 2}"


def move_parents(spec: Spec, space: Space, rng: random.Random) -> tuple[Spec, str]:
    """Returns (candidate, description) with one parent of one block replaced by another earlier block."""
    slots, parents = slots_of(spec), parents_of(spec)
    choices = [(p, k) for p in range(1, len(slots)) for k in (0, 1)]  # b2 has only the stem: no other choice
    p, k = rng.choice(choices)
    options = [q for q in range(p + 2) if q not in parents[p]]
    if not options:
        raise NoMove("no other earlier block")
    new = rng.choice(options)
    pair = list(parents[p])
    pair[k] = new
    parents[p] = tuple(pair)
    return build_candidate(space, slots, parents), f"parents: b{p + 2} parent {k} -> position {new}"


def move_levels(spec: Spec, space: Space, rng: random.Random) -> tuple[Spec, str]:
    """Returns (candidate, description) with one intermediate block moved by -1, +1 or +2 levels (within L2-L7)."""
    slots, parents = slots_of(spec), parents_of(spec)
    split = len(slots) - len(space.template.outputs)
    low, high = BLOCK_LEVELS
    choices = [(i, d) for i in range(split) for d in (-1, 1, 2) if low <= slots[i].level + d <= high]
    if not choices:
        raise NoMove("no intermediate block can move")
    i, delta = rng.choice(choices)
    slots[i] = Slot(slots[i].level + delta, slots[i].block_fn)
    return build_candidate(space, slots, parents), f"levels: b{i + 2} L{slots[i].level - delta} -> L{slots[i].level}"


def move_types(spec: Spec, space: Space, rng: random.Random) -> tuple[Spec, str]:
    """Returns (candidate, description) with one block's type flipped (bottleneck <-> residual)."""
    slots, parents = slots_of(spec), parents_of(spec)
    i = rng.randrange(len(slots))
    new = "residual" if slots[i].block_fn == "bottleneck" else "bottleneck"
    slots[i] = Slot(slots[i].level, new)
    return build_candidate(space, slots, parents), f"types: b{i + 2} -> {new}"


MOVE_FUNCTIONS = {"permute": move_permute, "parents": move_parents, "levels": move_levels, "types": move_types}


def mutate(spec: Spec, space: Space, rng: random.Random,
           attempts: int = DEFAULT_ATTEMPTS) -> tuple[Spec, dict, str]:
    """Returns (child, metrics, description): one move of a kind drawn among the space's moves, redrawn until the
    child is valid, meets the constraints and differs from `spec`. Raises SpaceError after `attempts` draws."""
    if not space.moves:
        raise SpaceError("the space has no move on; mutation needs at least one")
    for _ in range(attempts):
        kind = rng.choice(space.moves)
        try:
            child, description = MOVE_FUNCTIONS[kind](spec, space, rng)
        except NoMove:
            continue
        if child.blocks == spec.blocks:
            continue
        metrics = admit(child, space)
        if metrics is not None:
            return child, metrics, description
    raise SpaceError(f"no admissible mutation of {spec.name} in {attempts} draws; widen the constraints")
