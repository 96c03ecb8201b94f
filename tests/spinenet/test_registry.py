"""Registries: a block type added at run time (one describe function and its module class, nothing else) builds, counts
exactly as fvcore measures it, and has receptive fields; heads and families come from the registry."""
import pytest
import torch

from spinescope.analysis.architecture.receptive_field import receptive_fields
from spinescope.analysis.counting import count_differences, count_model, count_with_fvcore
from spinescope.spinenet import builtins, registry
from spinescope.spinenet.blocks import BLOCK_TYPES, register_block
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import BUILTIN_NAMES, SPEC_DIR, load_builtin
from spinescope.spinenet.containers import FORWARDS, MODULE_CLASSES, DescribedModule, child
from spinescope.spinenet.validate import parse_spec


@pytest.fixture
def plain_block_type():
    """A 'plain' block (one 3x3 conv-BN-activation, no shortcut), registered for one test and then removed."""

    @register_block("plain", expansion=1, summary="3x3 conv")
    def describe(d, name, in_channels, width, stride, activation, x):
        with d.module(name, "plain"):
            return d.conv_bn_act("conv", in_channels, width, 3, x, stride, activation)

    class Plain(DescribedModule):
        kind = "plain"

        def __init__(self, layer):
            super().__init__()
            self.conv = child(layer, "conv")

        def forward(self, x):
            return self.conv(x)

    yield "plain"
    del BLOCK_TYPES["plain"], MODULE_CLASSES["plain"], FORWARDS["plain"]


def test_a_new_block_type_is_one_describe_function_and_its_module_class(plain_block_type):
    spec = parse_spec({
        "name": "plain", "family": "spinenet", "min_level": 3, "max_level": 4,
        "scaling": {"endpoints_num_filters": 16, "filter_size_scale": 0.25, "resample_alpha": 0.5,
                    "block_repeats": 2},
        "blocks": [{"id": "a", "level": 3, "block_fn": "bottleneck", "parents": ["stem0", "stem1"],
                    "is_output": True},
                   {"id": "b", "level": 4, "block_fn": "residual", "parents": ["stem1", "a"], "is_output": True}],
        "head": {"width": 16}})
    # The family allows only its own types, so the new type goes in through the structure (as a family would).
    from dataclasses import replace

    spec = spec.with_blocks([replace(spec.blocks[0], block_fn="plain"), spec.blocks[1]])
    assert count_differences(count_model(spec, 96, "retinanet"), count_with_fvcore(spec, 96, "retinanet")) == []
    # By hand: block a is level 3 with C = 128 x 0.25 = 32; two plain blocks: 3x3 convs 32->32 (its input is C).
    counts = count_model(spec, 96)
    assert counts.params["backbone.blocks.a.group"] == 2 * (32 * 32 * 9 + 2 * 32)
    out = build_model(spec, "none", 96)(torch.zeros(1, 3, 96, 96))
    assert tuple(out["P3"].shape) == (1, 16, 12, 12)
    assert receptive_fields(spec, 96).nodes["a"].receptive_field > receptive_fields(spec, 96).nodes["stem1"].receptive_field


def test_builtins_come_by_family_then_smallest_backbone_first():
    order = list(registry.families())
    specs = {name: load_builtin(name) for name in BUILTIN_NAMES}
    counted = sorted(specs, key=lambda name: (order.index(specs[name].family),
                                              count_model(specs[name]).params["backbone"]))
    assert list(BUILTIN_NAMES) == counted


def test_a_builtin_file_outside_the_stored_order_comes_last(tmp_path, monkeypatch):
    for name in ("resnet50-fpn", "spinenet-49s"):
        (tmp_path / f"{name}.yaml").write_bytes((SPEC_DIR / f"{name}.yaml").read_bytes())
    (tmp_path / "b-extra.yaml").write_bytes((SPEC_DIR / "spinenet-49s.yaml").read_bytes())
    (tmp_path / "a-extra.yaml").write_bytes((SPEC_DIR / "spinenet-49s.yaml").read_bytes())
    monkeypatch.setattr(builtins, "SPEC_DIR", tmp_path)
    builtins.builtin_names.cache_clear()
    try:
        assert builtins.builtin_names() == ("spinenet-49s", "resnet50-fpn", "a-extra", "b-extra")
    finally:
        builtins.builtin_names.cache_clear()


def test_builtins_are_the_files_in_assets_and_heads_come_from_the_registry():
    assert sorted(BUILTIN_NAMES) == sorted(path.stem for path in SPEC_DIR.glob("*.yaml"))
    assert registry.head_names() == ("none", "retinanet", "classification")
    assert set(registry.families()) == {"spinenet", "spinenet_mobile", "resnet_fpn", "resnet"}
    with pytest.raises(ValueError, match="unknown head 'fcos'"):
        registry.head_type("fcos")
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        registry.head_options("classification", pooling="max")


def test_a_family_is_a_subclass_that_implements_the_whole_interface():
    class WithoutDescribe(registry.Family):
        name, title, stem_ids, fields = "partial", "Partial", ("stem",), frozenset()

        def block_width(self, spec, level):
            return 1

        def to_dict(self, spec):
            return {}

        def from_dict(self, data, common):
            return None

        def check(self, problems, data, min_level, max_level, levels_ok):
            return 1

        def resolve(self, spec, input_size):
            return None

    with pytest.raises(TypeError, match="describe"):
        WithoutDescribe()
    with pytest.raises(TypeError, match="Family subclass"):
        registry.register_family(registry.family("spinenet").__dict__)


def test_a_family_made_by_overriding_one_part_of_spinenet_resolves_with_its_widths():
    from spinescope.spinenet.families.spinenet import SpineNet
    from spinescope.spinenet.layout import resolve
    from spinescope.spinenet.spec import spec_to_dict

    class EvenSpineNet(SpineNet):
        name, title = "even_spinenet", "SpineNet, 16 wide at every level"
        widths = {level: 16 for level in range(1, 8)}

    registry.register_family(EvenSpineNet())
    try:
        data = {**spec_to_dict(load_builtin("spinenet-49s")), "family": "even_spinenet"}
        spec = parse_spec(data)
        # SpineNet-49S scales widths by 0.65: int(16 x 0.65) = 10; its blocks are bottlenecks (4 x 10 out).
        assert spec.scaling.filter_size_scale == 0.65
        nodes = resolve(spec, 128).nodes
        assert {(node.in_channels, node.out_channels) for node in nodes[2:] if node.block_fn == "bottleneck"} == {(40, 40)}
        assert [(node.in_channels, node.out_channels) for node in nodes[:2]] == [(64, 40), (40, 40)]  # after the stem conv
    finally:
        del registry.families()["even_spinenet"]
