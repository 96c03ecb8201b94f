"""Entry numbers in messages count from 1, as a reader counts: the k-th entry of a tuple list is "entry k", the k-th
block of a spec file "block k in the list", and the block table says "row k" for the same block. Each case puts
the problem in a known place and derives k by hand."""
from __future__ import annotations

import pytest

from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import replace_blocks
from spinescope.spinenet.formats import loads, read_tuples
from spinescope.spinenet.spec import spec_to_dict
from spinescope.spinenet.validate import SpecError, parse_spec

SPINENET_49 = load_builtin("spinenet-49")
GOOD = "(2, 'bottleneck', (0, 1), False)"


def tuple_problem(entries: list[str]) -> str:
    with pytest.raises(SpecError) as info:
        loads("[" + ", ".join(entries) + "]", "tuples", base=SPINENET_49)
    return str(info.value)


@pytest.mark.parametrize("position", [1, 2, 3])
def test_a_bad_tuple_list_entry_is_named_by_its_place_counted_from_1(position):
    before = [GOOD] * (position - 1)
    assert f"entry {position} is not" in tuple_problem(before + ["(2, 'bottleneck', 'x')"])
    assert f"entry {position} has input offset 9" in tuple_problem(before + ["(2, 'bottleneck', (0, 9), False)"])
    assert f"entry {position} has the digit" in tuple_problem(before + ["(\uff12, 'bottleneck', (0, 1), False)"])
    assert f"unexpected text after entry {position} " in tuple_problem(before + [GOOD + " (3"])


def test_the_sixteenth_entry_of_the_model_garden_list_is_entry_16():
    from reference_counts import SPINENET_49 as tuples

    text = "[" + ", ".join(repr(entry) for entry in tuples) + ", (2, 'bottleneck', (2, 13), True)]"
    assert len(tuples) + 1 == 16
    [note] = read_tuples(text, SPINENET_49).notes
    assert note.startswith("entry 16 (b17, level 2) is an output in the list")


def test_a_bad_block_in_a_spec_file_and_in_the_table_is_counted_from_1():
    data = spec_to_dict(SPINENET_49)
    data["blocks"][4]["id"] = "a b"  # the fifth block
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    assert str(info.value).startswith("block 5 in the list: id must be")
    rows = [{"id": b.id, "level": b.level, "block_fn": b.block_fn, "parents": list(b.parents),
             "is_output": b.is_output} for b in SPINENET_49.blocks]
    rows[4]["id"] = "a b"
    with pytest.raises(SpecError) as info:
        replace_blocks(SPINENET_49, rows)
    assert str(info.value).startswith("row 5: column \"id\" must be")
