"""Each mutation move changes what it says and nothing else; `mutate` gives an admissible, different child."""
import random

import pytest

from spinescope.analysis.search.moves import (MOVE_FUNCTIONS, move_levels, move_parents, move_permute, move_types,
                                              mutate)
from spinescope.analysis.search.space import Constraints, admit, make_space, sample_many
from spinescope.spinenet.spec import spec_to_dict
from spinescope.spinenet.validate import find_problems

SPACE = make_space(constraints=Constraints(allow_dead=True))
PARENTS = [spec for spec, _ in sample_many(SPACE, 6, seed=5)[0]]


def changed(before, after) -> list[int]:
    return [i for i, (a, b) in enumerate(zip(before.blocks, after.blocks)) if a != b]


def cases():
    return [(spec, random.Random(seed)) for spec in PARENTS for seed in range(8)]


def test_permute_swaps_two_blocks_of_one_group():
    for spec, rng in cases():
        child, _ = move_permute(spec, SPACE, rng)
        i, j = changed(spec, child)
        a, b = spec.blocks[i], spec.blocks[j]
        assert (child.blocks[i].level, child.blocks[i].block_fn) == (b.level, b.block_fn)
        assert (child.blocks[j].level, child.blocks[j].block_fn) == (a.level, a.block_fn)
        assert a.is_output == b.is_output  # intermediate with intermediate, output with output
        assert [x.parents for x in child.blocks] == [x.parents for x in spec.blocks]
        assert [x.is_output for x in child.blocks] == [x.is_output for x in spec.blocks]


def test_parents_changes_one_parent_of_one_block_to_an_earlier_block():
    for spec, rng in cases():
        child, _ = move_parents(spec, SPACE, rng)
        (i,) = changed(spec, child)
        before, after = spec.blocks[i], child.blocks[i]
        assert (before.level, before.block_fn, before.is_output) == (after.level, after.block_fn, after.is_output)
        kept = [p for p in after.parents if p in before.parents]
        new = [p for p in after.parents if p not in before.parents]
        assert len(kept) == 1 and len(new) == 1
        earlier = ["stem0", "stem1"] + [b.id for b in spec.blocks[:i]]
        assert new[0] in earlier and after.parents[0] != after.parents[1]


def test_levels_moves_one_intermediate_block_by_minus_one_to_plus_two():
    for spec, rng in cases():
        child, _ = move_levels(spec, SPACE, rng)
        (i,) = changed(spec, child)
        before, after = spec.blocks[i], child.blocks[i]
        assert not before.is_output
        assert after.level - before.level in (-1, 1, 2) and 2 <= after.level <= 7
        assert (before.block_fn, before.parents) == (after.block_fn, after.parents)


def test_types_flips_one_block():
    for spec, rng in cases():
        child, _ = move_types(spec, SPACE, rng)
        (i,) = changed(spec, child)
        before, after = spec.blocks[i], child.blocks[i]
        assert {before.block_fn, after.block_fn} == {"bottleneck", "residual"}
        assert (before.level, before.parents, before.is_output) == (after.level, after.parents, after.is_output)


@pytest.mark.parametrize("kind", sorted(MOVE_FUNCTIONS))
def test_mutate_with_one_move_on_gives_a_valid_admissible_different_child(kind):
    space = make_space(moves=(kind,))
    for spec, _ in sample_many(make_space(), 3, seed=9)[0]:  # parents without dead blocks, as a search has
        child, metrics, description = mutate(spec, space, random.Random(1))
        assert description.startswith(kind)
        assert child.blocks != spec.blocks
        assert find_problems(spec_to_dict(child)) == []
        assert admit(child, space) == metrics
