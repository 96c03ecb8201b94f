"""min_level 2 (P2) with the current Model Garden block list: import (min level 2 or 3), spec files, the editor's
min_level edit, the module's P2..P7 (a level-l map is ceil(S / 2^l)), the RetinaNet head on P2, the graph, the
receptive fields and the Python API's feature_info / ShapeSpec. Expected values come from the reference page's
formulas, not from the code under test."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

import spinescope
from p2_specs import FIFTEEN_TEXT, MODEL_GARDEN_TEXT, model_garden_spec
from spinescope.spinenet import edits
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.formats import dumps_yaml, import_tuples, loads, read, read_tuples
from spinescope.spinenet.graph import to_graph
from spinescope.spinenet.validate import SpecError, check_spec


def test_min_level_3_keeps_the_level_2_output_as_a_block_without_endpoint_with_a_note():
    result = read_tuples(MODEL_GARDEN_TEXT, load_builtin("spinenet-49"))
    last = result.spec.blocks[-1]
    assert (result.spec.min_level, len(result.spec.blocks), last.level, last.is_output) == (3, 16, 2, False)
    assert len(result.notes) == 1 and "b17" in result.notes[0] and "without an endpoint" in result.notes[0]


def test_min_level_2_makes_the_level_2_output_p2():
    result = read_tuples(MODEL_GARDEN_TEXT, load_builtin("spinenet-49"), min_level=2)
    spec = result.spec
    assert (spec.min_level, spec.blocks[-1].id, spec.blocks[-1].is_output, result.notes) == (2, "b17", True, ())
    imported = import_tuples(MODEL_GARDEN_TEXT, load_builtin("spinenet-49"), "paste", min_level=2)
    assert imported.spec.min_level == 2 and "outputs P2-P7" in imported.notes[0]


def test_min_level_2_without_a_level_2_output_is_refused_in_one_line():
    with pytest.raises(SpecError) as error:
        read_tuples(FIFTEEN_TEXT, load_builtin("spinenet-49"), min_level=2)
    assert str(error.value).startswith("tuple list: min level 2 needs an output at level 2 (P2)")
    for bad in (1, 8, "2\x1b", True):
        with pytest.raises(SpecError) as error:
            read_tuples(MODEL_GARDEN_TEXT, load_builtin("spinenet-49"), min_level=bad)
        assert "min level must be an integer from 2 to 7" in str(error.value) and "\x1b" not in str(error.value)


def test_a_spec_file_with_min_level_2_and_the_list_validates_and_round_trips():
    spec = model_garden_spec(2)
    text = dumps_yaml(spec)
    assert "min_level: 2" in text
    assert loads(text) == spec
    broken = text.replace("min_level: 2", "min_level: 3")  # the level-2 output is outside P3-P7 in a file
    with pytest.raises(SpecError, match="is_output at level 2, outside the output levels P3-P7"):
        loads(broken)


def test_set_min_level_lowers_with_a_chosen_block_and_raises_back_losslessly():
    start = model_garden_spec(3)
    with pytest.raises(SpecError) as error:
        edits.set_min_level(start, 2)
    assert str(error.value) == ("min level 2: no output block at level 2 (P2); choose one of the level-2 blocks "
                                "(b2, b17) as P2")
    with pytest.raises(SpecError, match="block 'b4' is at level 3, so it cannot be the P2 output"):
        edits.set_min_level(start, 2, {2: "b4"})
    lowered = edits.set_min_level(start, 2, {2: "b17"})
    assert lowered == model_garden_spec(2)
    assert edits.min_level_change_note(start, lowered) == "min level 3 -> 2: outputs P2-P7; b17 now feeds an endpoint"
    raised = edits.set_min_level(lowered, 3)
    assert raised == start
    assert "b17 kept without an endpoint" in edits.min_level_change_note(lowered, raised)
    history = edits.EditHistory.starting_with(start)
    history.apply(edits.set_min_level, 2, {2: "b17"}, description="min level 3 -> 2")
    with pytest.raises(SpecError):  # a refused edit leaves the history as it was
        history.apply(edits.set_min_level, 1, description="min level 2 -> 1")
    assert history.current == lowered and history.undo() == start and history.redo() == lowered


def test_resnet_fpn_refuses_min_level_2_naming_the_levels():
    spec = load_builtin("resnet50-fpn")
    with pytest.raises(SpecError) as error:
        check_spec(replace(spec, min_level=2))
    assert "resnet_fpn produces P3-P7 only" in str(error.value) and "got 2 and 7" in str(error.value)
    with pytest.raises(SpecError, match="resnet_fpn produces P3-P7 only"):
        edits.set_min_level(spec, 2)


@pytest.mark.parametrize("size", [100, 130])
def test_module_gives_p2_to_p7_and_the_head_runs_on_p2(size, one_torch_thread):
    spec = model_garden_spec(2)
    model = spinescope.create_model(spec, "retinanet", size)
    with torch.no_grad():
        features = model.backbone(torch.zeros(1, 3, size, size))
        outputs = model(torch.zeros(1, 3, size, size))
    expected = {f"P{level}": (1, 256, math.ceil(size / 2 ** level), math.ceil(size / 2 ** level))
                for level in range(2, 8)}
    assert {name: tuple(x.shape) for name, x in features.items()} == expected
    side = math.ceil(size / 4)
    shapes = _head_shapes(outputs, "P2")
    assert sorted(shapes) == sorted([(1, 91 * 9, side, side), (1, 4 * 9, side, side)])


def _head_shapes(outputs, level):
    """The RetinaNet outputs at one level, whatever the nesting ({level: (cls, box)} or {kind: {level: x}})."""
    found = []

    def walk(item, key=None):
        if isinstance(item, torch.Tensor):
            found.append((key, tuple(item.shape)))
        elif isinstance(item, dict):
            for name, value in item.items():
                walk(value, name if name.startswith("P") else key)
        elif isinstance(item, (list, tuple)):
            for value in item:
                walk(value, key)

    walk(outputs)
    return [shape for key, shape in found if key == level]


def test_api_feature_info_and_shape_spec_include_p2_with_stride_4():
    backbone = spinescope.create_backbone(model_garden_spec(2), 100)
    assert backbone.feature_info.reduction() == [4, 8, 16, 32, 64, 128]
    assert backbone.feature_info.channels() == [256] * 6
    assert backbone.feature_info.module_name()[0] == "endpoints.P2"
    assert backbone.output_shape()["P2"] == spinescope.api.ShapeSpec(256, 4, 25, 25)


def test_graph_marks_p2_only_with_min_level_2():
    for min_level, expected in ((2, 2), (3, None)):
        graph = to_graph(model_garden_spec(min_level), 128)
        assert graph.nodes["b17"]["output_level"] == expected
        assert graph.nodes["b17"]["feature_size"] == 32
    assert sorted(level for _, level in to_graph(model_garden_spec(2), 128).nodes(data="output_level")
                  if level is not None) == [2, 3, 4, 5, 6, 7]


def test_receptive_field_of_p2_is_p3s_plus_one_3x3_at_stride_4():
    """P2 comes from b17, fed by b13 (the P3 block, upsampled by nearest neighbour: no growth) and b2; its
    bottleneck adds one 3x3 at stride 4 (+2 x 4 px), the 1x1s add nothing: RF(P2) = RF(P3) + 8."""
    from spinescope.analysis.architecture.receptive_field import receptive_fields

    fields = receptive_fields(model_garden_spec(2), 256).outputs
    fifteen = receptive_fields(load_builtin("spinenet-49"), 256).outputs
    assert list(fields) == ["P2", "P3", "P4", "P5", "P6", "P7"]
    assert fields["P2"].stride == 4
    assert fields["P2"].receptive_field == fields["P3"].receptive_field + (3 - 1) * 4
    assert {name: field.receptive_field for name, field in fields.items() if name != "P2"} == \
        {name: field.receptive_field for name, field in fifteen.items()}


def test_read_applies_min_level_to_a_spec_file_as_the_editor_does():
    text = dumps_yaml(model_garden_spec(2))
    result = read(text, min_level=3)
    assert result.spec == model_garden_spec(3) and "b17 kept without an endpoint" in result.notes[0]
