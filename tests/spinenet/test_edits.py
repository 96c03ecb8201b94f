"""Edit operations, undo/redo history and spec diffs on SpineNet-49 (values checked against the reference table)."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import (EditHistory, children_of, delete_block, diff_specs, insert_block, move_block,
                            new_block_id, output_block, rename, replace_blocks, set_block_fn, set_level, set_output,
                            set_parents, set_scaling, set_stages)
from spinescope.spinenet.spec import spec_to_dict
from spinescope.spinenet.validate import SpecError, check_spec

SPINENET_49 = load_builtin("spinenet-49")


def rows_of(spec):
    return [{"id": b.id, "level": b.level, "block_fn": b.block_fn, "parent0": b.parents[0], "parent1": b.parents[1],
             "is_output": b.is_output} for b in spec.blocks]


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(SpecError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_set_level_returns_new_spec_and_keeps_the_old_one():
    edited = set_level(SPINENET_49, "b7", 5)
    assert edited.block("b7").level == 5
    assert SPINENET_49.block("b7").level == 4
    assert [b for b in edited.blocks if b.id != "b7"] == [b for b in SPINENET_49.blocks if b.id != "b7"]


def test_set_level_rejects_out_of_range_and_output_conflicts():
    assert "level must be an integer in [1, 7], got 9" in error_of(set_level, SPINENET_49, "b7", 9)
    message = error_of(set_level, SPINENET_49, "b12", 5)
    assert "'b12' is the P4 output" in message and "'b14'" in message
    assert "stem block" in error_of(set_level, SPINENET_49, "stem0", 3)
    assert "no block 'zz'" in error_of(set_level, SPINENET_49, "zz", 3)


def test_set_block_fn_checks_the_family():
    assert set_block_fn(SPINENET_49, "b3", "bottleneck").block("b3").block_fn == "bottleneck"
    assert "not used in family spinenet" in error_of(set_block_fn, SPINENET_49, "b3", "mbconv")


def test_set_parents_accepts_earlier_blocks_only():
    edited = set_parents(SPINENET_49, "b8", ("stem0", "b2"))
    assert edited.block("b8").parents == ("stem0", "b2")
    assert error_of(set_parents, SPINENET_49, "b8", ("b6", "b9")) == \
        "block 'b8': parent 'b9' comes after it; a parent must be an earlier block"
    assert "own parent" in error_of(set_parents, SPINENET_49, "b8", ("b8", "b6"))
    assert "two different parents" in error_of(set_parents, SPINENET_49, "b8", ("b6", "b6"))
    assert "does not exist" in error_of(set_parents, SPINENET_49, "b8", ("b6", "nope"))


def test_set_output_moves_the_flag_within_the_level():
    edited = set_output(SPINENET_49, "b7", True)  # b7 is level 4, whose output was b12
    assert output_block(edited, 4) == "b7"
    assert not edited.block("b12").is_output
    assert "only P4 output" in error_of(set_output, SPINENET_49, "b12", False)
    assert set_output(SPINENET_49, "b12", True) is SPINENET_49


def test_move_block_swaps_when_independent_and_names_the_blocking_parent():
    moved = move_block(SPINENET_49, "b7", -1)  # b7 (parents b3, b5) may pass b6
    assert moved.block_ids.index("b7") == SPINENET_49.block_ids.index("b6")
    assert error_of(move_block, SPINENET_49, "b5", -1) == \
        "cannot move 'b5' before 'b4': 'b4' is its parent and must come earlier"
    assert error_of(move_block, SPINENET_49, "b4", 1) == \
        "cannot move 'b4' after 'b5': 'b4' is a parent of 'b5' and must come earlier"
    assert "already the first block" in error_of(move_block, SPINENET_49, "b2", -1)
    assert "already the last block" in error_of(move_block, SPINENET_49, "b16", 1)


def test_insert_block_defaults():
    edited = insert_block(SPINENET_49, "b9")
    index = edited.block_ids.index("b9") + 1
    new = edited.blocks[index]
    assert new.id == new_block_id(SPINENET_49) == "b17"
    assert (new.level, new.block_fn, new.parents, new.is_output) == (7, "residual", ("b8", "b9"), False)
    assert len(edited.blocks) == len(SPINENET_49.blocks) + 1
    first = insert_block(SPINENET_49, "stem1")
    assert first.blocks[0].parents == ("stem0", "stem1") and first.blocks[0].level == 2
    assert "already used" in error_of(insert_block, SPINENET_49, "b9", block_id="b10")


def test_delete_block_names_the_children_or_rewires_them():
    assert children_of(SPINENET_49, "b6") == ["b8", "b9"]
    assert error_of(delete_block, SPINENET_49, "b6") == \
        "cannot delete 'b6': 'b8', 'b9' use it as a parent (rewire them first, or delete with rewiring)"
    rewired = delete_block(SPINENET_49, "b6", rewire=True)  # b6's parents: b3, b5
    assert "b6" not in rewired.block_ids
    assert rewired.block("b8").parents == ("b3", "b7")
    assert rewired.block("b9").parents == ("b3", "b8")
    assert "P4 output" in error_of(delete_block, SPINENET_49, "b12")
    leaf = insert_block(SPINENET_49, "b16")
    assert delete_block(leaf, "b17") == SPINENET_49


def test_replace_blocks_round_trips_and_reports_bad_rows():
    assert replace_blocks(SPINENET_49, rows_of(SPINENET_49)) == SPINENET_49
    rows = rows_of(SPINENET_49)
    rows[3]["level"] = 6.0  # a table editor hands back floats
    assert replace_blocks(SPINENET_49, rows).block("b5").level == 6
    rows[3]["parent1"] = float("nan")
    assert error_of(replace_blocks, SPINENET_49, rows) == ("row 4 ('b5'): column \"parent 2\" is empty (every "
                                                           "block has two parents)")
    rows = rows_of(SPINENET_49)
    rows[0]["block_fn"] = "conv"
    # Rows numbered from 1 and columns named by the table's labels, not the spec's field names.
    assert "row 1 ('b2'): column \"type\": must be one of" in error_of(replace_blocks, SPINENET_49, rows)
    rows = rows_of(SPINENET_49)
    rows[6]["parent0"] = "b16"
    assert error_of(replace_blocks, SPINENET_49, rows) == ("row 7 ('b8'): column \"parent 1\": 'b16' does not exist "
                                                           "before this block (a parent must come earlier)")
    assert "parents[" not in error_of(replace_blocks, SPINENET_49, rows, {"parent0": "first input"})
    assert "column \"first input\":" in error_of(replace_blocks, SPINENET_49, rows, {"parent0": "first input"})


def test_scaling_stages_and_name():
    scaled = set_scaling(SPINENET_49, endpoints_num_filters=128)
    assert scaled.scaling.endpoints_num_filters == 128 and scaled.head.width == 128
    assert "out of range" in error_of(set_scaling, SPINENET_49, block_repeats=99)
    resnet = load_builtin("resnet50-fpn")
    assert set_stages(resnet, (3, 4, 23, 3)).depth == 101
    assert "has blocks, not stages" in error_of(set_stages, SPINENET_49, (1, 1, 1, 1))
    assert "ResNet-FPN" in error_of(set_level, resnet, "c2_0", 3)
    assert rename(SPINENET_49, " mine ").name == "mine"


def test_history_undo_redo_and_base():
    history = EditHistory.starting_with(SPINENET_49, "load spinenet-49")
    assert not history.can_undo and not history.can_redo
    with pytest.raises(SpecError, match="nothing to undo"):
        history.undo()
    first = history.apply(set_level, "b7", 5, description="b7 level 5")
    second = history.apply(set_block_fn, "b3", "bottleneck", description="b3 bottleneck")
    with pytest.raises(SpecError):
        history.apply(set_level, "b7", 99, description="bad")
    assert history.current == second and len(history.entries) == 3
    assert history.undo() == first
    assert history.undo_description == "b7 level 5" and history.redo_description == "b3 bottleneck"
    assert history.redo() == second
    history.undo()
    third = history.apply(set_output, "b7", True, description="b7 output")
    assert history.entries[-1].spec == third and not history.can_redo
    other = load_builtin("spinenet-96")
    history.push(other, "load spinenet-96", kind="load")
    assert history.base == other
    history.undo()
    assert history.base == SPINENET_49


def test_dropping_the_oldest_entries_keeps_the_cursor_on_its_entry():
    history = EditHistory.starting_with(SPINENET_49, "start")
    for level in (5, 6, 3):
        history.apply(set_level, "b7", level, description=f"L{level}")
    history.undo()
    history.drop_oldest(2)
    assert [entry.description for entry in history.entries] == ["L6", "L3"] and history.cursor == 0
    assert history.current.block("b7").level == 6 and history.can_redo and not history.can_undo
    history.drop_oldest(5)  # never past the cursor: the current entry stays
    assert history.cursor == 0 and len(history.entries) == 2


def test_diff_reports_each_kind_of_change():
    spec = set_level(SPINENET_49, "b7", 5)
    spec = set_block_fn(spec, "b3", "bottleneck")
    spec = set_parents(spec, "b8", ("stem0", "b2"))
    spec = move_block(spec, "b7", -1)
    spec = insert_block(spec, "b16")
    spec = delete_block(spec, "b11", rewire=True)
    diff = diff_specs(SPINENET_49, spec)
    assert diff.added == ("b17",) and diff.removed == ("b11",)
    assert diff.moved == (("b7", 5, 4),) or diff.moved == (("b6", 4, 5),)
    assert ("b3", "residual", "bottleneck") in diff.retyped
    assert ("b7", 4, 5) in diff.relevelled
    assert ("b8", ("b6", "b7"), ("stem0", "b2")) in diff.rewired
    assert diff_specs(SPINENET_49, SPINENET_49).empty
    outputs = diff_specs(SPINENET_49, set_output(SPINENET_49, "b7", True))
    assert set(outputs.output_changed) == {("b7", False, True), ("b12", True, False)}
    assert "output flag of b7: off -> on" in outputs.lines()
    assert diff_specs(SPINENET_49, set_scaling(SPINENET_49, block_repeats=2)).other


EDITS = st.one_of(
    st.tuples(st.just("level"), st.integers(0, 20), st.integers(1, 7)),
    st.tuples(st.just("type"), st.integers(0, 20), st.sampled_from(["bottleneck", "residual"])),
    st.tuples(st.just("parents"), st.integers(0, 20), st.tuples(st.integers(0, 22), st.integers(0, 22))),
    st.tuples(st.just("output"), st.integers(0, 20), st.booleans()),
    st.tuples(st.just("move"), st.integers(0, 20), st.sampled_from([-1, 1])),
    st.tuples(st.just("insert"), st.integers(0, 20), st.none()),
    st.tuples(st.just("delete"), st.integers(0, 20), st.booleans()),
    st.tuples(st.just("undo"), st.none(), st.none()),
    st.tuples(st.just("redo"), st.none(), st.none()),
)


def _run(spec, op, index, value):
    block_id = spec.block_ids[index % len(spec.blocks)]
    if op == "level":
        return set_level(spec, block_id, value)
    if op == "type":
        return set_block_fn(spec, block_id, value)
    if op == "parents":
        candidates = ("stem0", "stem1") + spec.block_ids
        return set_parents(spec, block_id, tuple(candidates[v % len(candidates)] for v in value))
    if op == "output":
        return set_output(spec, block_id, value)
    if op == "move":
        return move_block(spec, block_id, value)
    if op == "insert":
        return insert_block(spec, block_id)
    return delete_block(spec, block_id, rewire=value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EDITS, max_size=25))
def test_random_edits_with_undo_redo_match_replaying_the_accepted_edits(steps):
    history = EditHistory.starting_with(SPINENET_49)
    accepted = []  # the specs a user could reach, replayed without the history object
    position = 0
    for op, index, value in steps:
        if op == "undo":
            if history.can_undo:
                history.undo()
                position -= 1
            continue
        if op == "redo":
            if history.can_redo:
                history.redo()
                position += 1
            continue
        before = history.current
        try:
            history.apply(_run, op, index, value, description=op)
        except SpecError:
            assert history.current == before
            continue
        del accepted[position:]
        accepted.append((op, index, value))
        position += 1
    replayed = SPINENET_49
    for op, index, value in accepted[:position]:
        replayed = _run(replayed, op, index, value)
    assert history.current == replayed
    check_spec(history.current)
    assert spec_to_dict(history.current)["blocks"]


def test_a_scaling_edit_keeps_a_head_narrower_than_the_endpoints():
    from spinescope.spinenet.formats import load_spec_file
    from spinescope.spinenet.builtins import SPEC_DIR

    variant = load_spec_file(SPEC_DIR.parent / "variants" / "spinenet-49s-256-128.yaml")
    assert (variant.scaling.endpoints_num_filters, variant.head.width) == (256, 128)
    edited = set_scaling(variant, block_repeats=2)
    assert edited.head.width == 128
    same_width = set_scaling(load_builtin("spinenet-49"), endpoints_num_filters=128)
    assert same_width.head.width == 128  # a head as wide as the endpoints follows them
