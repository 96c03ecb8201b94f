"""Receptive fields, strides and paths against derivations by hand (see each test's comments)."""
import pytest

from spinescope.analysis.architecture.receptive_field import output_receptive_fields, receptive_fields
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.validate import parse_spec

# Stem, by hand: 7x7/2 conv (r = 1 + 6 = 7, stride 2), 3x3/2 max-pool (r = 7 + 2 * 2 = 11, stride 4).
# A bottleneck at level l adds 2 * 2**l (its 3x3); a residual 4 * 2**l; a resampling from level p that goes down
# adds 2 * 2**p (its 3x3/2 conv), plus (k - 1) * 2**(p + 1) for a k x k max-pool after it; going up adds nothing.


def spinenet(blocks, min_level, max_level, repeats=1, family="spinenet", size=256):
    return parse_spec({
        "name": "hand", "family": family, "input_size": size, "min_level": min_level, "max_level": max_level,
        "scaling": {"endpoints_num_filters": 8, "filter_size_scale": 1.0, "resample_alpha": 0.5,
                    "block_repeats": repeats},
        "blocks": [{"id": i, "level": level, "block_fn": fn, "parents": list(parents), "is_output": out}
                   for i, level, fn, parents, out in blocks],
        "head": {"width": 8}})


def path(field):
    return field.layers, field.scale_changes, field.nodes


def test_one_block_spinenet():
    spec = spinenet([("b2", 3, "bottleneck", ("stem0", "stem1"), True)], 3, 3)
    fields = receptive_fields(spec)
    # stem0 = 11 + 8 = 19 (1 + 3 layers), stem1 = 19 + 8 = 27 (7 layers).
    assert (fields.nodes["stem0"].receptive_field, fields.nodes["stem1"].receptive_field) == (19, 27)
    assert fields.nodes["stem1"].stride == 4
    # b2 via stem1: 27 + 8 (3x3/2 at stride 4) + 16 (its 3x3 at stride 8) = 51; 7 + 3 + 3 = 13 layers.
    p3 = fields.outputs["P3"]
    assert (p3.receptive_field, p3.stride, p3.level) == (51, 8, 3)
    assert path(p3.longest) == (14, 1, ("stem0", "stem1", "b2"))  # + the 1x1 endpoint conv
    assert path(p3.shortest) == (11, 1, ("stem0", "b2"))
    assert output_receptive_fields(spec) == {"P3": 51}


def test_pooling_upsampling_and_repeats():
    spec = spinenet([("b2", 5, "residual", ("stem0", "stem1"), False),
                     ("b3", 3, "bottleneck", ("b2", "stem1"), True),
                     ("b4", 4, "bottleneck", ("b3", "b2"), True)], 3, 4, repeats=2)
    fields = receptive_fields(spec)
    # Two repeats: stem0 = 11 + 2 * 8 = 27 (7 layers), stem1 = 27 + 16 = 43 (13 layers).
    assert fields.nodes["stem1"].receptive_field == 43
    # b2 (L5) from stem1: 64 -> 8 px = 3x3/2 (+8) then a 5x5 max-pool of stride 4 at stride 8 (+32);
    # two residual blocks at stride 32: +64 +64 +128. 43 + 40 + 256 = 339, 13 + 3 + 4 = 20 layers.
    assert fields.nodes["b2"].receptive_field == 339
    assert path(fields.nodes["b2"].longest) == (20, 1, ("stem0", "stem1", "b2"))
    assert path(fields.nodes["b2"].shortest) == (14, 1, ("stem0", "b2"))
    # b3 (L3): up x4 from b2 keeps 339, two bottlenecks at stride 8 add 32: 371.
    assert (fields.outputs["P3"].receptive_field, fields.outputs["P3"].stride) == (371, 8)
    assert path(fields.nodes["b3"].longest) == (28, 2, ("stem0", "stem1", "b2", "b3"))
    # Shortest: 22 layers either via stem1 (1 scale change) or via stem0 -> b2 (2): the fewer changes win.
    assert path(fields.nodes["b3"].shortest) == (22, 1, ("stem0", "stem1", "b3"))
    # b4 (L4): via b3, 371 + 16 (3x3/2 at stride 8) + 64 (two 3x3 at stride 16) = 451.
    assert (fields.outputs["P4"].receptive_field, fields.outputs["P4"].stride) == (451, 16)
    assert path(fields.outputs["P4"].longest) == (38, 3, ("stem0", "stem1", "b2", "b3", "b4"))
    assert path(fields.outputs["P4"].shortest) == (23, 2, ("stem0", "b2", "b4"))


def test_zero_outdegree_merge_is_a_path_with_no_layers():
    # b2 feeds nothing, so it joins the output block b3 (same size and channels) through the 0-outdegree rule.
    spec = spinenet([("b2", 3, "bottleneck", ("stem0", "stem1"), False),
                     ("b3", 3, "bottleneck", ("stem0", "stem1"), True)], 3, 3)
    fields = receptive_fields(spec)
    assert fields.nodes["b2"].receptive_field == 51
    p3 = fields.outputs["P3"]
    assert p3.receptive_field == 51 + 16  # b2, then b3's own 3x3 at stride 8
    assert path(p3.longest) == (17, 1, ("stem0", "stem1", "b2", "b3"))
    assert path(p3.shortest) == (11, 1, ("stem0", "b3"))


def test_mobile_spinenet():
    spec = spinenet([("b2", 3, "mbconv", ("stem0", "stem1"), True)], 3, 3, family="spinenet_mobile")
    fields = receptive_fields(spec)
    # 3x3/2 conv: 3, stride 2. stem0 (L1, depthwise 3x3 at stride 2): 7. stem1 (L2, stride-2 depthwise): 11.
    assert [fields.nodes[n].receptive_field for n in ("stem0", "stem1")] == [7, 11]
    # b2 via stem0: two stride-2 depthwise convs (+4, +8) then its depthwise at stride 8 (+16): 35; via stem1: 35.
    p3 = fields.outputs["P3"]
    assert p3.receptive_field == 35
    assert path(p3.longest) == (13, 2, ("stem0", "stem1", "b2"))
    assert path(p3.shortest) == (11, 1, ("stem0", "b2"))


def test_resnet_fpn_smallest():
    spec = parse_spec({"name": "r", "family": "resnet_fpn", "stages": [1, 1, 1, 1], "fpn_num_filters": 8,
                       "head": {"width": 8}})
    fields = receptive_fields(spec, 256)
    # stem 11; c2_0 +8 = 19; c3_0 3x3/2 at stride 4: 27; c4_0: 43; c5_0: 75 (1 + 4 x 3 = 13 layers).
    assert [fields.nodes[n].receptive_field for n in ("stem", "c2_0", "c3_0", "c4_0", "c5_0")] == [11, 19, 27, 43, 75]
    # Every FPN level sees C5 through the top-down path; P_l adds its 3x3 at stride 2**l; P6, P7 their 3x3/2.
    assert output_receptive_fields(spec, 256) == {"P3": 75 + 16, "P4": 75 + 32, "P5": 75 + 64, "P6": 139 + 64,
                                                  "P7": 203 + 128}
    p3 = fields.outputs["P3"]
    assert path(p3.longest) == (15, 5, ("stem", "c2_0", "c3_0", "c4_0", "c5_0", "P3"))
    assert path(p3.shortest) == (9, 1, ("stem", "c2_0", "c3_0", "P3"))
    assert path(fields.outputs["P7"].longest) == (17, 5, ("stem", "c2_0", "c3_0", "c4_0", "c5_0", "P5", "P6", "P7"))
    assert [fields.outputs[f"P{level}"].stride for level in range(3, 8)] == [8, 16, 32, 64, 128]


def test_resnet50_c5_has_the_known_427_pixels():
    fields = receptive_fields(load_builtin("resnet50-fpn"), 640)
    # 11 + 3*8 + (8 + 3*16) + (16 + 5*32) + (32 + 2*64): torchvision's ResNet-50 (stride on the 3x3).
    assert fields.nodes["c5_2"].receptive_field == 427
    assert fields.outputs["P5"].receptive_field == 427 + 64
    assert fields.outputs["P3"].longest.layers == 1 + 16 * 3 + 2


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_every_builtin_has_growing_fields_and_nominal_strides(name):
    spec = load_builtin(name)
    fields = receptive_fields(spec)
    assert list(fields.outputs) == ["P3", "P4", "P5", "P6", "P7"]
    for key, field in fields.outputs.items():
        assert field.stride == 2 ** int(key[1:])
        assert field.shortest.layers <= field.longest.layers
        assert field.receptive_field > field.stride
    for node_id, field in fields.nodes.items():
        assert field.longest.nodes[-1] == node_id and field.shortest.nodes[-1] == node_id
    assert fields.outputs["P7"].receptive_field > fields.outputs["P3"].receptive_field


def test_spinenet49_reaches_further_than_resnet50_fpn():
    # The scale-permuted P3 sees the whole 640 px image (its path goes through level 7), ResNet-50-FPN's does not.
    spine = output_receptive_fields(load_builtin("spinenet-49"), 640)
    resnet = output_receptive_fields(load_builtin("resnet50-fpn"), 640)
    assert spine["P3"] > 640 > resnet["P3"]
    fields = receptive_fields(load_builtin("spinenet-49"), 640)
    assert "b9" in fields.outputs["P3"].longest.nodes  # b9 is the level-7 block
