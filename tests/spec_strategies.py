"""Hypothesis strategies for random valid specs (every one passes `spinenet.validate.parse_spec`)."""
from hypothesis import strategies as st

from spinescope.spinenet import registry
from spinescope.spinenet.spec import STEM_IDS
from spinescope.spinenet.validate import LIMITS, parse_spec


@st.composite
def spinenet_specs(draw, family=None, max_blocks=8, max_repeats=3, max_scale=LIMITS["filter_size_scale"][1],
                   min_blocks=0):
    """A random SpineNet or Mobile SpineNet spec, valid by construction: random levels, block types, parents (any
    earlier block or stem), one output block per level min..max, random scaling within the limits (filter scale
    up to `max_scale`, repeats up to `max_repeats`), `min_blocks` to `max_blocks` blocks, random head."""
    family = family or draw(st.sampled_from(["spinenet", "spinenet_mobile"]))
    min_level = draw(st.integers(2, 5))
    max_level = draw(st.integers(min_level, 7))
    output_levels = list(range(min_level, max_level + 1))
    count = draw(st.integers(max(len(output_levels), min_blocks), max(len(output_levels), max_blocks)))
    levels = draw(st.lists(st.integers(1, 7), min_size=count, max_size=count))
    output_slots = draw(st.permutations(range(count)))[:len(output_levels)]
    outputs = dict(zip(output_slots, output_levels))
    block_fns = registry.family(family).block_fns
    blocks, known = [], list(STEM_IDS)
    for index in range(count):
        parents = draw(st.lists(st.sampled_from(known), min_size=2, max_size=2, unique=True))
        blocks.append({"id": f"b{index + 2}", "level": outputs.get(index, levels[index]),
                       "block_fn": draw(st.sampled_from(block_fns)), "parents": parents,
                       "is_output": index in outputs})
        known.append(f"b{index + 2}")
    low_scale, high_scale = LIMITS["filter_size_scale"]
    low_alpha, high_alpha = LIMITS["resample_alpha"]
    endpoints = draw(st.integers(1, 48))
    data = {
        "name": "random", "family": family, "input_size": draw(st.integers(32, 160)),
        "min_level": min_level, "max_level": max_level,
        "activation": draw(st.sampled_from(["relu", "swish"])),
        "scaling": {"endpoints_num_filters": endpoints,
                    "filter_size_scale": draw(st.floats(low_scale, min(max_scale, high_scale))),
                    "resample_alpha": draw(st.floats(low_alpha, high_alpha)),
                    "block_repeats": draw(st.integers(1, max_repeats))},
        "blocks": blocks,
        "head": {"num_convs": draw(st.integers(0, 3)), "width": endpoints, "separable": draw(st.booleans()),
                 "num_classes": draw(st.integers(1, 20)), "num_anchors": draw(st.integers(1, 9))},
    }
    return parse_spec(data)


@st.composite
def resnet_fpn_specs(draw):
    """A random ResNet-FPN spec: 1-3 blocks per stage, random FPN width and head."""
    width = draw(st.integers(1, 48))
    return parse_spec({
        "name": "random-resnet", "family": "resnet_fpn", "input_size": draw(st.integers(32, 160)),
        "stages": draw(st.lists(st.integers(1, 3), min_size=4, max_size=4)), "fpn_num_filters": width,
        "activation": draw(st.sampled_from(["relu", "swish"])),
        "head": {"num_convs": draw(st.integers(0, 3)), "width": width, "separable": draw(st.booleans()),
                 "num_classes": draw(st.integers(1, 20)), "num_anchors": draw(st.integers(1, 9))},
    })
