"""Model Garden semantics as a spec field: the four differences from the reference, and dead blocks dropped."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from model_garden_cases import MODEL_GARDEN_SPINENET_49
from spinescope.analysis.counting.analysis import analyze
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.describe import describe
from spinescope.spinenet.formats import read_tuples
from spinescope.spinenet.layers import Conv2dSame, hard_sigmoid
from spinescope.spinenet.layout import dead_blocks, model_garden_resample_plan, reference_resample_plan, resolve
from spinescope.spinenet.spec import spec_from_dict, spec_hash, spec_to_dict
from spinescope.spinenet.validate import SpecError, find_problems, parse_spec


def _model_garden_list(min_level: int, semantics: str):
    spec = read_tuples(MODEL_GARDEN_SPINENET_49, load_builtin("spinenet-49"), min_level).spec
    return replace(spec, semantics=semantics)


def _bottleneck(cin: int, width: int) -> int:
    """Params of a bottleneck block (convs without bias, BN 2 per channel), its shortcut only where cin != 4 width."""
    params = cin * width + 2 * width + 9 * width * width + 2 * width + width * 4 * width + 2 * 4 * width
    return params + (cin * 4 * width + 2 * 4 * width if cin != 4 * width else 0)


def _connection(parent_out: int, parent_width: int, target_in: int, alpha: float = 0.5) -> int:
    """Params of a same-level or upsampling connection: 1x1 to alpha x C_parent (+BN), 1x1 to the target (+BN)."""
    reduced = int(parent_width * alpha)
    return parent_out * reduced + 2 * reduced + reduced * target_in + 2 * target_in


def test_model_gardens_list_at_min_level_3_counts_as_model_garden_does():
    """21,831,488: Model Garden's own count of its 16-block SpineNet-49 at min_level 3 (the issue's independent
    build). The reference keeps the dead level-2 block b17: its bottleneck (256 -> 64 -> 256) and its connections
    from b2 (L2, same level) and b13 (L3 bottleneck, 512 channels, up x2), counted by hand."""
    b17 = _bottleneck(256, 64) + _connection(256, 64, 256) + _connection(512, 128, 256)
    assert b17 == 137_152
    model_garden = analyze(_model_garden_list(3, "model_garden"))
    reference = analyze(_model_garden_list(3, "reference"))
    assert model_garden.params == 21_831_488
    assert reference.params == model_garden.params + b17 == 21_968_640
    assert reference.macs == model_garden.macs  # the dead block's MACs never counted (fvcore drops dead code)
    assert [block.id for block in model_garden.blocks if block.id == "b17"] == []


def test_at_min_level_2_both_semantics_build_every_block():
    for semantics in ("reference", "model_garden"):
        assert analyze(_model_garden_list(2, semantics)).params == 22_034_688


def test_dead_blocks_are_reported_with_why_and_dropped_under_model_garden():
    reference = resolve(_model_garden_list(3, "reference"))
    garden = resolve(_model_garden_list(3, "model_garden"))
    assert dead_blocks(reference) == {"b17": "b17 feeds no block and is not an output"}
    assert dead_blocks(garden) == dead_blocks(reference)
    assert "b17" in [node.id for node in reference.nodes]
    assert "b17" not in [node.id for node in garden.nodes] and garden.dropped == {"b17": dead_blocks(reference)["b17"]}
    assert not any("b17" in (edge.source, edge.target) for edge in garden.edges)
    model = build_model(_model_garden_list(3, "model_garden"), "none", 128, device="meta")
    assert "b17" not in model.backbone.blocks and "b16" in model.backbone.blocks


def test_downsampling_by_8_is_two_3x3_pools_under_model_garden():
    assert model_garden_resample_plan((80, 80), (10, 10)).pools == 2  # conv /2, pool /2, pool /2
    assert model_garden_resample_plan((80, 80), (20, 20)).pools == 1
    assert model_garden_resample_plan((80, 80), (40, 40)).pools == 0
    reference = reference_resample_plan((80, 80), (10, 10))
    assert (reference.pool_kernel, reference.pool_stride, reference.pools) == ((5, 5), (4, 4), 0)
    spec = replace(load_builtin("spinenet-49"), semantics="model_garden")
    b15 = describe(spec, 640).layer("backbone.blocks.b15.resample.0")  # from b5 (L4) to L7: down x8
    pools = [call for call in b15.calls if call.op == "max_pool_same"]
    assert [(call.kernel, call.stride) for call in pools] == [(3, 2), (3, 2)]
    assert pools[-1].output[1:] == (5, 5)


def test_model_garden_pools_widen_the_receptive_field_of_a_down_by_8_path():
    """P7 here is widest through b3 (L4) -> b8 (L7), down x8. After the connection's stride-2 conv the jump is
    j = 2**5 input pixels: Model Garden's 3x3/2 then 3x3/2 pools add 2j + 4j = 6j, the reference's one 5x5/4 pool
    adds 4j, so P7's receptive field (read from the structure) grows by 2j; the other levels do not change."""
    from spinescope.analysis.architecture.receptive_field import output_receptive_fields

    text = ("[(3, 'bottleneck', (0, 1), False), (4, 'bottleneck', (2, 1), False), (5, 'bottleneck', (3, 2), True), "
            "(3, 'bottleneck', (2, 3), True), (4, 'bottleneck', (3, 4), True), (6, 'bottleneck', (4, 3), True), "
            "(7, 'bottleneck', (3, 1), True)]")
    spec = read_tuples(text, load_builtin("spinenet-49")).spec
    reference = output_receptive_fields(spec, 1024)
    garden = output_receptive_fields(replace(spec, semantics="model_garden"), 1024)
    assert garden["P7"] - reference["P7"] == 2 * 2 ** 5
    assert {level: garden[level] for level in ("P3", "P4", "P5", "P6")} == \
        {level: reference[level] for level in ("P3", "P4", "P5", "P6")}


def test_strided_convs_pad_as_tf_same():
    """A 3x3/2 conv on an even side pads 0 before and 1 after: output pixel (0, 0) sums input rows and columns 0-2."""
    conv = Conv2dSame(1, 1, 3, 2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    image = torch.arange(36, dtype=torch.float32).reshape(1, 1, 6, 6)
    out = conv(image)
    assert out.shape == (1, 1, 3, 3)
    assert out[0, 0, 0, 0].item() == image[0, 0, :3, :3].sum().item()
    assert out[0, 0, 2, 2].item() == image[0, 0, 4:, 4:].sum().item()  # the last window: 2 pixels and the pad
    odd = torch.ones(1, 1, 5, 5)
    assert conv(odd)[0, 0, 0, 0].item() == 4.0  # odd side: 1 before and 1 after, as PyTorch's padding=1
    spec = replace(load_builtin("spinenet-49"), semantics="model_garden")
    stem = describe(spec, 640).layer("backbone.stem_conv.0.0")
    assert stem.attrs.get("same") is True
    assert "same" not in describe(load_builtin("spinenet-49"), 640).layer("backbone.stem_conv.0.0").attrs


def test_the_squeeze_excite_gate_is_model_gardens_hard_sigmoid():
    x = torch.tensor([-4.0, -3.0, 0.0, 3.0, 4.0])
    assert torch.equal(hard_sigmoid(x), torch.tensor([0.0, 0.0, 0.50001, 6 * 0.16667, 6 * 0.16667]))
    spec = replace(load_builtin("spinenet-mobile-49"), semantics="model_garden")
    se = describe(spec, 384).layer("backbone.blocks.b2.group.0.se")
    assert se.attrs["gate"] == "hard_sigmoid" and "hard_sigmoid" in [call.op for call in se.calls]


def test_hard_swish_is_an_activation():
    spec = replace(load_builtin("spinenet-mobile-49"), semantics="model_garden", activation="hard_swish")
    model = build_model(spec, "none", 128)
    x = torch.linspace(-5, 5, 11)
    assert torch.allclose(torch.nn.Hardswish()(x), x * torch.clamp(x + 3, 0, 6) / 6)
    assert any(isinstance(module, torch.nn.Hardswish) for module in model.modules())


def test_semantics_in_the_file_format_and_the_hash():
    spec = load_builtin("spinenet-49")
    assert "semantics" not in spec_to_dict(spec)  # the reference is the default: files and hashes unchanged
    garden = replace(spec, semantics="model_garden")
    data = spec_to_dict(garden)
    assert data["semantics"] == "model_garden"
    assert spec_from_dict(data) == garden and parse_spec(data) == garden
    assert spec_hash(garden) != spec_hash(spec)


@pytest.mark.parametrize("value, problem", [
    ("tf2", "semantics: must be one of reference, model_garden, got 'tf2'"),
    (["model_garden"], "semantics: must be one of reference, model_garden, got ['model_garden']"),
])
def test_a_bad_semantics_is_one_line(value, problem):
    data = spec_to_dict(load_builtin("spinenet-49"))
    data["semantics"] = value
    assert find_problems(data) == [problem]


def test_model_garden_semantics_is_refused_for_resnet_fpn():
    data = {**spec_to_dict(load_builtin("resnet50-fpn")), "semantics": "model_garden"}
    with pytest.raises(SpecError, match="model_garden applies to spinenet and spinenet_mobile only, not resnet_fpn"):
        parse_spec(data)


@pytest.mark.parametrize("name, size", [("spinenet-49", (256, 384)), ("spinenet-mobile-49", 256)])
def test_the_module_runs_at_the_described_shapes(name, size):
    spec = replace(load_builtin(name), semantics="model_garden")
    structure = describe(spec, size)
    model = build_model(spec, "none", size)
    height, width = (size, size) if isinstance(size, int) else size
    with torch.no_grad():
        out = model(torch.randn(1, 3, height, width))
    assert {level: tuple(t.shape[1:]) for level, t in out.items()} == structure.features
    assert all(np.isfinite(t.numpy()).all() for t in out.values())


@pytest.mark.slow
@pytest.mark.parametrize("name, activation, size", [("spinenet-49", "relu", (128, 192)),
                                                    ("spinenet-mobile-49", "hard_swish", 128)])
def test_the_fast_counter_equals_fvcores_trace_under_model_garden_semantics(name, activation, size):
    """fvcore traces the real module (SAME pads, repeated pools, hard-sigmoid gates, hard_swish) and agrees with the
    counts derived from the description, module by module, uncounted operators included."""
    spec = replace(load_builtin(name), semantics="model_garden", activation=activation)
    result = analyze(spec, size, verify=True)
    assert result.verified, result.differences[:5]
    assert result.uncounted_ops.get("aten::pad", 0) > 0  # even sides: the asymmetric SAME padding is there


def test_the_semantics_edit_and_its_note():
    from spinescope.spinenet.edits import semantics_change_note, set_semantics

    spec = _model_garden_list(3, "reference")
    garden = set_semantics(spec, "model_garden")
    assert garden.semantics == "model_garden" and garden.blocks == spec.blocks
    assert semantics_change_note(spec, garden) == ("semantics reference -> model_garden: 21,968,640 -> 21,831,488 "
                                                   "params; dead block b17 not built")
    assert semantics_change_note(garden, spec).endswith("dead block b17 built again (params counted, 0 MACs)")
    with pytest.raises(SpecError, match="semantics must be one of reference, model_garden, got 'tf2'"):
        set_semantics(spec, "tf2")
    with pytest.raises(SpecError, match="model_garden applies to spinenet and spinenet_mobile only"):
        set_semantics(load_builtin("resnet50-fpn"), "model_garden")
    from spinescope.spinenet.edits import diff_specs

    assert diff_specs(spec, garden).lines() == ["semantics: reference -> model_garden"]
    assert diff_specs(spec, spec).lines() == []


@pytest.mark.slow
def test_an_onnx_export_with_free_sizes_keeps_model_garden_semantics(tmp_path):
    """The exported graph (SAME pads and pools computed from the input's size) gives the eager module's outputs at
    sizes other than the example's, non-square included."""
    import io

    import onnxruntime

    import spinescope
    from spinescope.onnx_export import export_onnx
    from spinescope.spinenet.formats import dumps

    spec_file = tmp_path / "garden.yaml"
    spec_file.write_text(dumps(replace(load_builtin("spinenet-49s"), semantics="model_garden"), "yaml"),
                         encoding="utf-8")
    backbone = spinescope.create_backbone(spec_file, 128)
    buffer = io.BytesIO()
    export_onnx(backbone, buffer, input_size=128)
    session = onnxruntime.InferenceSession(buffer.getvalue())
    for height, width in ((256, 256), (256, 384)):
        image = torch.randn(1, 3, height, width)
        with torch.no_grad():
            eager = backbone(image)
        exported = session.run(None, {"images": image.numpy()})
        for output, array in zip(session.get_outputs(), exported):
            assert np.abs(array - eager[output.name].numpy()).max() < 1e-4
