"""Each invalid spec gets its precise one-line message naming the block and the field."""
import copy

import pytest

from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.spec import spec_to_dict
from spinescope.spinenet.validate import SpecError, find_problems, parse_spec

BASE = spec_to_dict(load_builtin("spinenet-49"))


def mutated(change):
    data = copy.deepcopy(BASE)
    change(data)
    return data


def block(data, block_id):
    return next(b for b in data["blocks"] if b["id"] == block_id)


CASES = [
    (lambda d: block(d, "b4").update(parents=["b2", "b9"]),
     "block 'b4': parents[1] 'b9' does not exist before this block"),
    (lambda d: block(d, "b4").update(parents=["b4", "b2"]), "block 'b4': parents[0] is the block itself"),
    (lambda d: block(d, "b4").update(parents=["b2", "nope"]), "block 'b4': parents[1] 'nope' does not exist"),
    (lambda d: block(d, "b4").update(parents=["b2", "b2"]), "block 'b4': both parents are 'b2'"),
    (lambda d: block(d, "b4").update(parents=["b2"]), "block 'b4': parents must be a list of two block ids"),
    (lambda d: block(d, "b4").update(block_fn="conv"), "block 'b4': block_fn must be one of"),
    (lambda d: block(d, "b4").update(block_fn="mbconv"), "block 'b4': block_fn 'mbconv' is not used in family"),
    (lambda d: block(d, "b4").update(level=9), "block 'b4': level: 9 is out of range [1, 7]"),
    (lambda d: block(d, "b4").update(level="3"), "block 'b4': level: must be an integer"),
    (lambda d: block(d, "b4").update(id="b2"), "block 'b2': duplicate id 'b2'"),
    (lambda d: block(d, "b4").update(id="stem0"), "id 'stem0' is reserved"),
    (lambda d: block(d, "b4").update(id="a b"), "block 3 in the list: id must be 1-32 letters"),
    (lambda d: block(d, "b4").update(is_output="yes"), "block 'b4': is_output must be true or false"),
    (lambda d: block(d, "b4").update(colour=1), "block 'b4': unknown field 'colour'"),
    (lambda d: block(d, "b13").update(is_output=False), "outputs: no output block at level 3 (P3)"),
    (lambda d: block(d, "b4").update(is_output=True), "outputs: level 3 has 2 output blocks"),
    (lambda d: block(d, "b2").update(is_output=True), "block 'b2': is_output at level 2, outside the output levels"),
    (lambda d: d.update(min_level=8), "min_level: 8 is out of range"),
    (lambda d: d.update(min_level=5, max_level=4), "min_level: 5 is above max_level 4"),
    (lambda d: d["scaling"].update(filter_size_scale=float("nan")), "scaling.filter_size_scale: must be a finite"),
    (lambda d: d["scaling"].update(filter_size_scale=1e9), "scaling.filter_size_scale: 1000000000.0 is out of"),
    (lambda d: d["scaling"].update(resample_alpha=-1), "scaling.resample_alpha: -1 is out of range"),
    (lambda d: d["scaling"].update(block_repeats=1000), "scaling.block_repeats: 1000 is out of range"),
    (lambda d: d["scaling"].update(endpoints_num_filters=10**9), "scaling.endpoints_num_filters: 1000000000 is"),
    (lambda d: d["scaling"].pop("block_repeats"), "scaling.block_repeats: missing"),
    (lambda d: d.update(input_size=10**6), "input_size: 1000000 is out of range"),
    (lambda d: d.update(input_size=-640), "input_size: -640 is out of range"),
    (lambda d: d.update(input_size=True), "input_size: must be an integer"),
    (lambda d: d.update(family="vit"), "family: must be one of"),
    (lambda d: d.update(activation="gelu"), "activation: must be one of relu, swish"),
    (lambda d: d.update(name=""), "name: must be a non-empty string"),
    (lambda d: d.update(blocks=[]), "blocks: the list is empty"),
    (lambda d: d.update(blocks="b2"), "blocks: must be a list"),
    (lambda d: d.update(blocks=d["blocks"] * 5000), "blocks: 75000 blocks, more than the limit of 64"),
    (lambda d: d["head"].update(width=0), "head.width: 0 is out of range"),
    (lambda d: d["head"].update(num_convs=100), "head.num_convs: 100 is out of range"),
    (lambda d: d.update(extra=1), "spec: unknown field 'extra'"),
    (lambda d: d.update(stages=[3, 4, 6, 3]), "spec: unknown field 'stages'"),
]


@pytest.mark.parametrize("change, message", CASES)
def test_invalid_spec_message(change, message):
    problems = find_problems(mutated(change))
    assert any(message in problem for problem in problems), problems
    assert all("\n" not in problem for problem in problems)
    with pytest.raises(SpecError):
        parse_spec(mutated(change))


def test_valid_builtin_has_no_problems():
    assert find_problems(BASE) == []


@pytest.mark.parametrize("data, message", [
    ([1, 2], "spec: must be a mapping of fields, got list"),
    ({"family": "resnet_fpn", "name": "r", "stages": [3, 4]}, "stages: must be a list of 4 block counts"),
    ({"family": "resnet_fpn", "name": "r", "stages": [3, 4, 6, 0]}, "stages[3]: 0 is out of range"),
    ({"family": "resnet_fpn", "name": "r", "stages": [3, 4, 6, 3], "min_level": 2},
     "resnet_fpn produces P3-P7 only"),
])
def test_other_invalid_specs(data, message):
    assert any(message in problem for problem in find_problems(data))
