"""The space: the ResNet-50 seed's block counts, sampling validity (every sample validates, round-trips through the
file format, counts as the fast counter counts the whole detector), reproducibility, moves switched off, constraints."""
import random

import pytest

from spinescope.analysis.counting.fast import count_model
from spinescope.analysis.search.seed import RESNET50_BLOCKS, template_of
from spinescope.analysis.search.space import (LEVEL_DELTAS, Constraints, SpaceError, draw, make_space, sample,
                                              sample_many, sample_rng)
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.formats import dumps_json, loads
from spinescope.spinenet.layout import live_nodes, resolve
from spinescope.spinenet.spec import spec_to_dict
from spinescope.spinenet.validate import find_problems


def level_counts(blocks) -> dict:
    counts = {}
    for block in blocks:
        counts[block.level] = counts.get(block.level, 0) + 1
    return counts


def test_resnet50_counts_come_from_the_builtin_and_spinenet49_differs():
    # ResNet-50's stages as the built-in ResNet-50-FPN spec stores them (levels 2..5), independent of the seed code.
    assert tuple(RESNET50_BLOCKS.values()) == load_builtin("resnet50-fpn").stages == (3, 4, 6, 3)
    # SpineNet-49 with its two stem blocks (docs/spinenet-facts.md, section 2): not ResNet-50's counts per level.
    s49 = load_builtin("spinenet-49")
    assert {**level_counts(s49.blocks), 2: level_counts(s49.blocks)[2] + 2} == {2: 3, 3: 2, 4: 4, 5: 4, 6: 2, 7: 2}
    assert sum(b.block_fn == "residual" for b in s49.blocks) == 4


def test_resnet50_seed_is_resnet50s_blocks_plus_p6_p7():
    seed = make_space().seed
    assert seed.family == "spinenet" and all(b.block_fn == "bottleneck" for b in seed.blocks)
    # ResNet-50's 16 blocks minus the 2 stem blocks, plus one L6 and one L7 output block.
    assert level_counts(seed.blocks) == {2: 1, 3: 4, 4: 6, 5: 3, 6: 1, 7: 1}
    assert [b.level for b in seed.blocks if b.is_output] == [3, 4, 5, 6, 7]
    assert all(b.is_output for b in seed.blocks[-5:])
    assert find_problems(spec_to_dict(seed)) == []
    # Intermediate blocks in increasing level: the scale-decreased end of the space.
    inter = [b.level for b in seed.blocks if not b.is_output]
    assert inter == sorted(inter)


def test_every_sample_validates_round_trips_and_counts_as_the_whole_detector():
    space = make_space()
    samples, draws = sample_many(space, 25, seed=3)
    assert draws >= 25
    for spec, metrics in samples:
        assert find_problems(spec_to_dict(spec)) == []
        assert loads(dumps_json(spec)) == spec  # exports and reads back as the same spec
        counts = count_model(spec, 640, "retinanet")  # the whole model, counted in one piece
        assert metrics["macs"] == counts.macs("") and metrics["params"] == counts.params[""]
        assert metrics["dead"] == 0
        assert all(b.id in live_nodes(resolve(spec, 640)) for b in spec.blocks)
        assert spec.name.startswith("candidate-")


def test_sampling_is_reproducible_from_the_seed():
    space = make_space()
    first = [spec for spec, _ in sample_many(space, 5, seed=7)[0]]
    again = [spec for spec, _ in sample_many(space, 5, seed=7)[0]]
    other = [spec for spec, _ in sample_many(space, 5, seed=8)[0]]
    assert first == again
    assert first != other
    # sample i does not depend on the samples before it
    assert sample(space, sample_rng(7, 3))[0] == first[3]


def test_moves_switched_off_keep_what_they_govern():
    seed_space = make_space(moves=())
    template = template_of(seed_space.seed)
    for moves in (("parents",), ("permute",), ("levels",), ("types",), ("permute", "parents")):
        space = make_space(moves=moves, constraints=Constraints(allow_dead=True))
        for index in range(15):
            spec = draw(space, random.Random(index))
            levels = [b.level for b in spec.blocks]
            seed_levels = [s.level for s in template.intermediate + template.outputs]
            if "permute" not in moves and "levels" not in moves:
                assert levels == seed_levels
            if "levels" not in moves:
                assert sorted(levels) == sorted(seed_levels)
            else:  # levels on, permute off: each intermediate block within -1..+2 of the seed's, in L2-L7
                for level, seed_level in zip(levels[:-5], seed_levels[:-5]):
                    assert level - seed_level in LEVEL_DELTAS and 2 <= level <= 7
                assert levels[-5:] == seed_levels[-5:]
            if "types" not in moves:
                assert all(b.block_fn == "bottleneck" for b in spec.blocks)
            if "parents" not in moves:
                assert [b.parents for b in spec.blocks] == [b.parents for b in seed_space.seed.blocks]
            assert find_problems(spec_to_dict(spec)) == []


def test_no_move_gives_the_seed_itself():
    space = make_space(moves=())
    assert draw(space, random.Random(0)).blocks == space.seed.blocks


def test_constraints_hold_for_every_sample():
    space = make_space(constraints=Constraints(macs_min=84e9, macs_max=88e9, params_max=28e6,
                                               memory_max_bytes=7.5 * 2 ** 30, memory_batch=8))
    for spec, metrics in sample_many(space, 10, seed=1)[0]:
        counts = count_model(spec, 640, "retinanet")
        assert 84e9 <= counts.macs("") <= 88e9 and counts.params[""] <= 28e6
        assert metrics["memory_bytes"] <= 7.5 * 2 ** 30


def test_impossible_constraints_are_one_line():
    space = make_space(constraints=Constraints(macs_max=1e6))
    with pytest.raises(SpaceError, match="no candidate met the constraints in 20 draws") as error:
        sample(space, random.Random(0), attempts=20)
    assert "\n" not in str(error.value)


def test_spinenet49_as_seed():
    space = make_space("spinenet-49", seed_spec=load_builtin("spinenet-49"), moves=())
    assert draw(space, random.Random(0)).blocks == load_builtin("spinenet-49").blocks
    with pytest.raises(SpaceError, match="resnet_fpn spec"):
        make_space("resnet50-fpn", seed_spec=load_builtin("resnet50-fpn"))
    with pytest.raises(SpaceError, match="unknown move"):
        make_space(moves=("shuffle",))


@pytest.mark.slow
def test_remembered_part_counts_equal_the_fast_counter_everywhere_in_the_space():
    from spinescope.analysis.search.costs import CostCache
    from spinescope.analysis.search.moves import mutate

    space = make_space(constraints=Constraints(allow_dead=True))  # dead blocks too: they count params, not MACs
    cache = CostCache(640)
    specs = [spec for spec, _ in sample_many(space, 150, seed=21, receptive=False)[0]]
    specs += [mutate(spec, space, random.Random(i))[0] for i, spec in enumerate(specs[:30])]
    for spec in specs:
        cache.count(spec)
    assert cache.hits > 50 and cache.misses > 0  # both paths: summed from remembered parts, and counted whole
    for spec in specs[::8]:
        counts = count_model(spec, 640)
        assert cache.count(spec) == (counts.params[""], counts.macs(""))
    dead = [spec for spec in specs if any(b.id not in live_nodes(resolve(spec, 640)) for b in spec.blocks)]
    assert dead  # the check above covered specs with dead blocks
    for spec in dead[:5]:
        counts = count_model(spec, 640)
        assert cache.count(spec) == (counts.params[""], counts.macs(""))
