"""The Python API follows the conventions users know (timm, torchvision, detectron2): `feature_info` with timm's
accessors, `out_channels`, timm's classifier methods, TypeError for an unknown keyword, ValueError for a value
outside the spec limits, and one module tree, so weights move between `create_backbone` and `create_model` with a
strict load. Expected values are written out by hand (or come from the spec validator, from torch's own
interpolation, or from timm where it is installed), not from the code under test."""
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import spinescope
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import set_scaling, set_stages
from spinescope.spinenet.spec import spec_to_dict
from spinescope.spinenet.validate import LIMITS, find_problems, parse_spec

SIZE = 64


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """The machine is shared: one thread."""


def small_spinenet():
    """SpineNet-49S at a quarter of its widths, 32-channel endpoints: P3-P7."""
    return set_scaling(load_builtin("spinenet-49s"), filter_size_scale=0.25, endpoints_num_filters=32)


def small_resnet():
    """ResNet's own classifier trunk with one block per stage: C5 (2048 channels, ResNet's) as P5."""
    return parse_spec({"name": "tiny", "family": "resnet", "stages": [1, 1, 1, 1], "input_size": SIZE,
                       "min_level": 5, "max_level": 5})


# (spec, the outputs' levels, their width) by hand
FAMILIES = {
    "spinenet": (small_spinenet, [3, 4, 5, 6, 7], 32),
    "spinenet_mobile": (lambda: load_builtin("spinenet-mobile-49xs"), [3, 4, 5, 6, 7], 24),
    "resnet_fpn": (lambda: set_stages(load_builtin("resnet50-fpn"), (1, 1, 1, 1)), [3, 4, 5, 6, 7], 256),
    "resnet": (small_resnet, [5], 2048),
}


def images(batch=2, seed=0):
    return torch.randn(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


# -- feature_info and out_channels -------------------------------------------------------------------------------

def test_feature_info_has_timms_accessors_and_stays_a_list_of_dicts():
    info = spinescope.create_backbone(small_spinenet(), SIZE).feature_info
    assert isinstance(info, list) and len(info) == 5 and info[0]["num_chs"] == 32
    assert info.out_indices == (0, 1, 2, 3, 4)
    assert info.channels() == [32] * 5 and info.channels(0) == 32 and info.channels([1, 3]) == [32, 32]
    assert info.reduction() == [8, 16, 32, 64, 128]
    assert info.reduction(-1) == 128 and info.reduction((0, 2)) == [8, 32]
    assert info.module_name() == ["endpoints.P3", "endpoints.P4", "endpoints.P5", "endpoints.P6", "endpoints.P7"]
    assert info.module_name(2) == "endpoints.P5"
    assert info.get_dicts() == list(info) and info.get_dicts()[1] is info[1]
    assert info.get_dicts(keys=["num_chs", "reduction"], idx=1) == {"num_chs": 32, "reduction": 16}
    assert info.get_dicts(keys=["module"], idx=[0, 4]) == [{"module": "endpoints.P3"}, {"module": "endpoints.P7"}]
    assert info.get_dicts(keys=["level"]) == [{"level": level} for level in (3, 4, 5, 6, 7)]
    assert info.get_dicts(idx=3) is info[3]


def test_feature_info_answers_as_timms_own_feature_info():
    """Where timm is installed (it is not a dependency), its FeatureInfo over the same dicts answers alike."""
    timm_features = pytest.importorskip("timm.models._features")
    info = spinescope.create_backbone(small_spinenet(), SIZE).feature_info
    theirs = timm_features.FeatureInfo([dict(d) for d in info], tuple(range(len(info))))
    assert info.out_indices == tuple(theirs.out_indices)
    for idx in (None, 0, 2, -1, [0, 4], (1, 3)):
        assert info.channels(idx) == theirs.channels(idx)
        assert info.reduction(idx) == theirs.reduction(idx)
        assert info.module_name(idx) == theirs.module_name(idx)
        for keys in (None, ["num_chs"], ["module", "reduction"]):
            assert info.get_dicts(keys, idx) == theirs.get_dicts(keys, idx)


@pytest.mark.parametrize("family", FAMILIES)
def test_feature_info_modules_output_the_features_and_out_channels_is_one_int(family):
    """A forward hook on each feature_info module (timm's FeatureHooks) sees the very tensor forward returns; the
    channels and sides are the hand values (side ceil(64 / 2**level))."""
    make_spec, levels, width = FAMILIES[family]
    backbone = spinescope.create_backbone(make_spec(), SIZE)
    info = backbone.feature_info
    modules = dict(backbone.named_modules())
    seen = {}
    for name in info.module_name():
        modules[name].register_forward_hook(lambda module, args, output, name=name: seen.__setitem__(name, output))
    with torch.no_grad():
        features = backbone(images(1))
    assert list(features) == [f"P{level}" for level in levels]
    assert info.reduction() == [2 ** level for level in levels] and info.channels() == [width] * len(levels)
    for name, (level, tensor) in zip(info.module_name(), features.items()):
        assert seen[name] is tensor
        side = math.ceil(SIZE / 2 ** int(level[1:]))
        assert tensor.shape == (1, width, side, side)
    assert backbone.out_channels == width and type(backbone.out_channels) is int


def test_out_channels_is_the_list_per_level_when_the_widths_differ():
    backbone = spinescope.create_backbone(small_spinenet(), SIZE)
    backbone.feature_info = spinescope.FeatureInfo(
        {"module": f"endpoints.P{level}", "num_chs": chs, "reduction": 2 ** level, "level": level}
        for level, chs in ((3, 64), (4, 128)))
    assert backbone.out_channels == [64, 128]


# -- one state dict ---------------------------------------------------------------------------------------------

def _differ(first, second):
    return any(not torch.equal(first[level], second[level]) for level in first)


@pytest.mark.parametrize("head", ["retinanet", "classification", "none"])
def test_weights_move_between_create_backbone_and_create_model_with_a_strict_load(head):
    spec, x = small_spinenet(), images()
    torch.manual_seed(1)
    backbone = spinescope.create_backbone(spec, SIZE)
    torch.manual_seed(2)
    model = spinescope.create_model(spec, head, SIZE)
    with torch.no_grad():
        assert _differ(backbone(x), model.backbone(x))  # random weights differ, so the loads below matter
        model.backbone.load_state_dict(backbone.state_dict(), strict=True)
        ours, theirs = backbone(x), model.backbone(x)
        assert not _differ(ours, theirs)
        torch.manual_seed(3)
        other = spinescope.create_model(spec, head, SIZE)
        assert _differ(other.backbone(x), ours)
        backbone.load_state_dict(other.backbone.state_dict(), strict=True)
        assert not _differ(backbone(x), other.backbone(x))
    assert isinstance(model.backbone, spinescope.Backbone)
    build_model(spec, "none", SIZE).backbone.load_state_dict(backbone.state_dict(), strict=True)  # the built tree


@pytest.mark.parametrize("head, options", [("retinanet", {}), ("classification", {"num_classes": 5}),
                                           ("none", {})])
def test_create_model_has_build_models_module_tree_and_state_dict(head, options):
    spec = small_spinenet()
    model = spinescope.create_model(spec, head, SIZE, **options)
    built = build_model(spec, head, SIZE, **options)
    assert [name for name, _ in model.named_modules()] == [name for name, _ in built.named_modules()]
    assert list(model.state_dict()) == list(built.state_dict())
    built.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        ours, theirs = model(images()), built(images())
    assert torch.equal(flat(ours), flat(theirs))
    backbone = spinescope.create_backbone(spec, SIZE)
    assert [f"backbone.{key}" for key in backbone.state_dict()] == [key for key in built.state_dict()
                                                                     if key.startswith("backbone.")]


def flat(output):
    """Every tensor of a model's output (a tensor, or dicts and tuples of them) in one vector."""
    if isinstance(output, torch.Tensor):
        return output.flatten()
    values = output.values() if isinstance(output, dict) else output
    return torch.cat([flat(value) for value in values])


# -- the classifier ---------------------------------------------------------------------------------------------

def test_classifier_follows_timm():
    spec, x = small_spinenet(), images()
    model = spinescope.create_model(spec, "classification", SIZE, num_classes=7, pooling="spp:4,2,1")
    assert model.num_classes == 7 and model.num_features == 32
    assert model.head_hidden_size == 32 * (16 + 4 + 1)
    with torch.no_grad():
        features = model.forward_features(x)
        outputs = model.backbone(x)
        # by hand: every level resized (nearest; the sizes divide) to P3's 8 x 8, averaged
        merged = torch.stack([F.interpolate(t, size=(8, 8), mode="nearest") for t in outputs.values()]).mean(0)
        assert features.shape == (2, 32, 8, 8) and torch.allclose(features, merged)
        pre_logits = model.forward_head(features, pre_logits=True)
        assert pre_logits.shape == (2, 672)
        assert torch.allclose(pre_logits[:, :32 * 16].reshape(2, 32, 4, 4), F.adaptive_max_pool2d(merged, 4))
        logits = model(x)
        assert logits.shape == (2, 7)
        assert torch.equal(model.forward_head(model.forward_features(x)), logits)
        assert torch.allclose(logits, pre_logits @ model.get_classifier().weight.T + model.get_classifier().bias)


def test_reset_classifier_changes_the_output_size_and_zero_leaves_the_pooled_vector():
    model, x = spinescope.create_model(small_spinenet(), "classification", SIZE, num_classes=7), images()
    keys = list(model.state_dict())
    old = model.get_classifier()
    torch.manual_seed(0)
    model.reset_classifier(3)
    assert model.num_classes == 3 and list(model.state_dict()) == keys and model.get_classifier() is not old
    built = build_model(small_spinenet(), "classification", SIZE, num_classes=3).head.fc
    assert torch.equal(model.head.fc.bias, built.bias)  # started as build_model starts a classifier
    assert model.head.fc.weight.std().item() == pytest.approx(built.weight.std().item(), rel=0.3)
    with torch.no_grad():
        assert model(x).shape == (2, 3)
        model.reset_classifier(0)
        assert model.num_classes == 0 and isinstance(model.get_classifier(), nn.Identity)
        assert model(x).shape == (2, 32)
        assert torch.allclose(model(x), model.forward_features(x).mean((2, 3)))  # 'gap': the map's mean
        model.reset_classifier(4, "spp:2,1")
        assert model(x).shape == (2, 4) and model.head_hidden_size == 32 * 5 and model.pooling == "spp:2,1"
    for bad in (-1, 1.5, 10 ** 9, "3"):
        with pytest.raises(ValueError, match="num_classes"):
            model.reset_classifier(bad)
    with pytest.raises(ValueError, match="pooling 'avg'"):
        model.reset_classifier(3, "avg")
    assert model.num_classes == 4  # a refused reset changes nothing


def test_a_classifier_trains():
    model = spinescope.create_model(small_spinenet(), "classification", SIZE, num_classes=3).train()
    model.reset_classifier(2)
    assert model.head.fc.training
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(images(4)), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    assert model.head.fc.weight.grad is not None and model.backbone.endpoints.P3[0].weight.grad is not None
    optimizer.step()


# -- arguments --------------------------------------------------------------------------------------------------

def test_spec_error_is_importable_from_spinescope():
    from spinescope import SpecError
    from spinescope.spinenet.validate import SpecError as validators

    assert SpecError is validators and issubclass(SpecError, ValueError)


@pytest.mark.parametrize("head", ["retinanet", "classification"])
def test_a_typo_raises_type_error_naming_the_close_keyword(head):
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'num_class'.*did you mean 'num_classes'"):
        spinescope.create_model(small_spinenet(), head, SIZE, num_class=4)


def test_unknown_keywords_raise_type_error():
    spec = small_spinenet()
    with pytest.raises(TypeError, match="num_classes"):
        spinescope.create_backbone(spec, SIZE, num_classes=4)
    with pytest.raises(TypeError, match="takes no options"):
        spinescope.create_model(spec, "none", SIZE, num_classes=4)
    with pytest.raises(TypeError, match="pooling"):
        spinescope.create_model(spec, "retinanet", SIZE, pooling="gap")
    with pytest.raises(TypeError, match="features_only"):
        spinescope.create_model(spec, "classification", SIZE, features_only=True)


@pytest.mark.parametrize("create", ["backbone", "retinanet", "classification"])
def test_pretrained_and_other_input_channels_are_refused_clearly(create):
    def make(**kwargs):
        if create == "backbone":
            return spinescope.create_backbone(small_spinenet(), SIZE, **kwargs)
        return spinescope.create_model(small_spinenet(), create, SIZE, **kwargs)

    with pytest.raises(ValueError, match="pretrained=True: no pretrained weights are bundled.*load_state_dict"):
        make(pretrained=True)
    for in_chans in (1, 4, "3", 3.0):
        with pytest.raises(ValueError, match=r"in_chans=.*3-channel"):
            make(in_chans=in_chans)
    make(pretrained=False, in_chans=3)  # timm's defaults pass


def test_retinanet_keywords_change_the_specs_head():
    spec = small_spinenet()
    model = spinescope.create_model(spec, "retinanet", SIZE, num_classes=4)
    assert model.head.class_net.predict.out_channels == 4 * 9  # 9 anchors per position
    with torch.no_grad():
        class_logits, boxes = model(images(1))["P3"]
    assert class_logits.shape == (1, 36, 8, 8) and boxes.shape == (1, 36, 8, 8)
    model = spinescope.create_model(spec, "retinanet", SIZE, num_convs=2, width=16, num_anchors=3)
    assert len(model.head.class_net.convs) == 2 and model.head.class_net.convs[0].out_channels == 16
    assert model.head.box_net.predict.out_channels == 4 * 3
    default = spinescope.create_model(spec, "retinanet", SIZE, num_classes=None)  # None: the spec's
    assert default.head.class_net.predict.out_channels == 91 * 9


NUM_CLASSES = [-1, 0, 1.5, 10 ** 9, True, "4", float("nan"), 10 ** 5000]


@pytest.mark.parametrize("head", ["retinanet", "classification"])
@pytest.mark.parametrize("value", NUM_CLASSES, ids=["-1", "0", "1.5", "1e9", "True", "str", "nan", "1e5000"])
def test_bad_num_classes_raise_value_error_naming_it_in_one_line(head, value):
    with pytest.raises(ValueError) as error:
        spinescope.create_model(small_spinenet(), head, SIZE, num_classes=value)
    message = str(error.value)
    assert "num_classes" in message and "\n" not in message and len(message) < 200
    if not (isinstance(value, int) and value > 10 ** 100):
        assert ascii(value) in message
    if head == "retinanet":
        assert isinstance(error.value, spinescope.SpecError)


@pytest.mark.parametrize("value", [-1, 0, 1, 1.5, 10 ** 9, 10_000, 10_001])
@pytest.mark.parametrize("head", ["retinanet", "classification"])
def test_the_api_takes_exactly_the_num_classes_a_spec_file_may_have(head, value):
    """The spec validator's verdict on a file's head.num_classes is the API's, for both heads."""
    spec = small_spinenet()
    refused_in_a_file = bool(find_problems({**spec_to_dict(spec), "head": {**spec_to_dict(spec)["head"],
                                                                           "num_classes": value}}))
    assert refused_in_a_file == (value not in (1, 10_000)) and LIMITS["max_num_classes"] == 10_000
    try:
        spinescope.create_model(spec, head, SIZE, num_classes=value, device="meta")
    except ValueError:
        refused = True
    else:
        refused = False
    assert refused == refused_in_a_file


def test_other_bad_values_raise_value_error():
    spec = small_spinenet()
    cases = [("retinanet", {"num_convs": 17}, "head.num_convs"), ("retinanet", {"width": 0}, "head.width"),
             ("retinanet", {"separable": "yes"}, "head.separable"), ("retinanet", {"num_anchors": 101}, "num_anchors"),
             ("classification", {"pooling": "avg"}, "pooling 'avg'"),
             ("classification", {"pooling": "spp:0"}, "spp levels"), ("unknown", {}, "head: must be one of"),
             (["retinanet"], {}, "head: must be one of")]
    for head, options, words in cases:
        with pytest.raises(ValueError, match=words):
            spinescope.create_model(spec, head, SIZE, **options)
    for size in (-1, 0, 10 ** 9, 1.5, (64,), (64, 64, 3), "64x", 31, 2049, (64, 4096)):
        with pytest.raises(ValueError, match="input size|input_size"):
            spinescope.create_backbone(spec, size)
    assert spinescope.create_backbone(spec, "96x64").input_size == (64, 96)  # WIDTHxHEIGHT
    assert spinescope.create_backbone(spec, [64, 96]).output_shape()["P3"] == spinescope.ShapeSpec(32, 8, 8, 12)


def test_a_spec_edited_with_a_bad_head_is_refused_as_a_file_would_be():
    spec = replace(small_spinenet(), head=replace(small_spinenet().head, num_classes=0))
    with pytest.raises(spinescope.SpecError, match="head.num_classes: 0 is out of range"):
        spinescope.create_backbone(spec, SIZE)
