"""Height x width inputs: sizes as users write them (WIDTHxHEIGHT), feature maps per axis, resampling decided per
axis, and counts and receptive fields that follow, checked by hand and against the square case."""
import math

import pytest
import torch

from spinescope.analysis.architecture.receptive_field import receptive_fields
from spinescope.analysis.counting import analyze
from spinescope.analysis.counting.fast import count_model
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.build import build_model
from spinescope.spinenet.describe import describe
from spinescope.spinenet.input_size import compact, hw, normalize, parse_size, size_label, size_to_json
from spinescope.spinenet.layout import resolve

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("text, size, label", [
    ("640", (640, 640), "640"), ("1333x800", (800, 1333), "1333x800"), ("640x640", (640, 640), "640"),
    (" 1024 X 768 ", (768, 1024), "1024x768"), ("1024×768", (768, 1024), "1024x768")])
def test_sizes_parse_as_width_x_height(text, size, label):
    assert parse_size(text, 32, 2048) == size
    assert size_label(size) == label


@pytest.mark.parametrize("text, message", [
    ("abc", "must be N or WIDTHxHEIGHT"), ("1333x", "must be N or WIDTHxHEIGHT"), ("-5", "input size -5 is out of range"), ("640x-1", "height -1 is out of range"),
    ("1333x8000", "height 8000 is out of range"), ("16x800", "width 16 is out of range"),
    ("4000", "input size 4000 is out of range"), ("1x2x3", "must be N or"), ("123456789012345678901", "must be N or"), ("12345678", "input size 12345678 is out of range"),
])
def test_bad_sizes_get_one_line_naming_the_value(text, message):
    with pytest.raises(ValueError, match=message) as error:
        parse_size(text, 32, 2048)
    assert "\n" not in str(error.value)


def test_sizes_are_height_width_pairs_inside_and_compact_in_json():
    assert normalize(640) == (640, 640) and normalize([768, 1024]) == (768, 1024) and normalize("1333x800") == (800, 1333)
    assert compact((640, 640)) == 640 and compact([768, 1024]) == (768, 1024)
    assert size_to_json(640) == 640 and size_to_json((800, 1333)) == "1333x800"
    spec = load_builtin("spinenet-49")
    assert describe(spec, (640, 640)) is describe(spec, 640)  # one cache entry, one Structure
    assert analyze(spec, (640, 640)).to_dict()["input_size"] == 640
    assert analyze(spec, (768, 1024)).to_dict()["input_size"] == "1024x768"


@pytest.mark.parametrize("name", ["spinenet-49", "spinenet-mobile-49", "resnet50-fpn"])
def test_every_node_is_ceil_h_by_ceil_w(name):
    layout = resolve(load_builtin(name), (800, 1333))
    for node in layout.nodes:
        assert (node.height, node.width) == (math.ceil(800 / 2 ** node.level), math.ceil(1333 / 2 ** node.level))


def test_resampling_is_decided_per_axis_in_the_real_module():
    # SpineNet-49 at 1024 wide x 800 high: b15 (L7, 7x8) reads b5 (L4, 50x64). Height: 50 // 7 = 7 > 2 and
    # 50 % 7 != 0, so pool stride 2 (kernel 5: ratio > 4), 25 -> 13, then a resize to 7. Width: 64 // 8 = 8 with
    # no remainder, so pool stride 8 / 2 = 4 (kernel 5), 32 -> 8 exactly.
    spec = load_builtin("spinenet-49")
    structure = describe(spec, (800, 1024))
    pools = {call.stride for layer in structure.root.walk() for call in layer.calls if call.op == "max_pool_same"
             and "resample" in layer.name}
    assert (2, 4) in pools  # height stride 2, width stride 4 in one SAME max-pool
    edge = next(e for e in structure.layout.edges_into("b15") if e.source == "b5")
    assert (edge.plan.pool_stride, edge.plan.pool_kernel, edge.plan.resize) == ((2, 4), (5, 5), True)
    model = build_model(spec, "none", (800, 1024)).eval()
    with torch.no_grad():
        features = model(torch.randn(1, 3, 800, 1024))
    assert {k: tuple(v.shape[-2:]) for k, v in features.items()} == {
        f"P{level}": (math.ceil(800 / 2 ** level), math.ceil(1024 / 2 ** level)) for level in range(3, 8)}


def test_counts_follow_the_area_by_hand():
    # The stem's 7x7/2 conv: 7 * 7 * 3 * 64 weights at each of ceil(H/2) x ceil(W/2) outputs.
    counts = count_model(load_builtin("spinenet-49"), (800, 1333), "none")
    assert counts.macs("backbone.stem_conv.0.0") == 7 * 7 * 3 * 64 * 400 * 667
    # The RetinaNet head of SpineNet-49: per level, 4 3x3 convs 256 -> 256 and the 3x3 predictors (91 x 9 classes
    # and 4 x 9 box values) in each of the two subnets, at ceil(H / 2^l) x ceil(W / 2^l) pixels.
    per_pixel = 2 * 4 * 9 * 256 * 256 + 9 * 256 * (91 * 9 + 4 * 9)
    area = sum(math.ceil(800 / 2 ** level) * math.ceil(1333 / 2 ** level) for level in range(3, 8))
    result = analyze(load_builtin("spinenet-49"), (800, 1333), "retinanet")
    assert result.head_macs == per_pixel * area


def test_receptive_fields_per_axis_equal_the_square_ones():
    # Each axis's kernels and strides are decided from that axis's sides alone, so the receptive field along the
    # width of a 1024 x 800 input is the square 1024 one, and along its height the square 800 one.
    spec = load_builtin("spinenet-49")
    fields = receptive_fields(spec, (800, 1024)).outputs
    wide, high = receptive_fields(spec, 1024).outputs, receptive_fields(spec, 800).outputs
    for level, field in fields.items():
        assert field.receptive_field_hw == (high[level].receptive_field, wide[level].receptive_field)
        assert field.receptive_field == max(field.receptive_field_hw)


def test_hw_accepts_the_json_list_the_latency_worker_reads():
    assert hw([800, 1333]) == (800, 1333) and hw(640) == (640, 640)


def test_the_api_describes_height_and_width_per_level():
    import spinescope
    from spinescope.api import ShapeSpec

    backbone = spinescope.create_backbone("spinenet-49s", input_size=(800, 1333))
    assert backbone.output_shape()["P3"] == ShapeSpec(128, 8, 100, 167)
    assert backbone.output_shape()["P7"] == ShapeSpec(128, 128, 7, 11)


def test_spp_classifier_input_length_is_the_same_at_height_x_width():
    from spinescope.analysis.architecture.classifier_input import classifier_input

    spec = load_builtin("spinenet-49")
    wide, square = classifier_input(spec, (800, 1333), "spp"), classifier_input(spec, 224, "spp")
    assert wide.length == square.length == 256 * (16 + 4 + 1)
    assert wide.pooled_map[1:] != square.pooled_map[1:] and wide.to_dict()["input_size"] == "1333x800"
    model = build_model(spec, "classification", (200, 333), pooling="spp", num_classes=10).eval()
    assert model.head.fc.in_features == wide.length
    with torch.no_grad():
        assert tuple(model(torch.zeros(1, 3, 200, 333)).shape) == (1, 10)
