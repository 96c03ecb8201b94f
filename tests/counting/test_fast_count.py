"""The fast counter equals fvcore's trace of the real module: every module's operator counts, uncounted operators
and params, for every built-in and for random valid specs at random small input sizes."""
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from spinescope.analysis.counting import analyze, count_params, count_with_fvcore
from spinescope.analysis.counting.fast import (MAC_OPS, ModelCounts, clear_cache, count_block_group, count_differences,
                                 count_model)
from spec_strategies import resnet_fpn_specs, spinenet_specs
from spinescope.spinenet.describe import describe_block_group
from spinescope.spinenet.modules import instantiate
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.build import build_model
from spinescope.spinenet.spec import feature_size
from spinescope.spinenet.validate import LIMITS


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@lru_cache(maxsize=None)
def fvcore(name: str, size: int, head: str) -> ModelCounts:
    return count_with_fvcore(load_builtin(name), size, head)


def subtree(counts: ModelCounts, prefix: str) -> dict:
    """Returns {module: (ops, uncounted, params)} for `prefix` and its submodules."""
    return {name: (dict(counts.ops[name]), dict(counts.uncounted[name]), counts.params[name])
            for name in counts.params if name == prefix or name.startswith(prefix + ".")}


class HeadOnly(nn.Module):
    """Runs a model's head alone on feature maps; its submodule is called `head`, as in the whole model, so
    fvcore names the head's modules exactly as it does in the whole model."""

    def __init__(self, head: nn.Module, levels: list[str]):
        super().__init__()
        self.head, self.levels = head, levels

    def forward(self, *maps):
        return self.head(dict(zip(self.levels, maps)))


def fvcore_head_only(name: str, size: int, pooling: str) -> ModelCounts:
    """fvcore's counts of the classification head alone, run on zero feature maps of the backbone's output shapes
    (P_l: endpoint width x ceil(size / 2**l) squared, checked against the real backbone in test_shapes.py)."""
    from fvcore.nn import FlopCountAnalysis

    spec = load_builtin(name)
    head = build_model(spec, "classification", size, pooling=pooling).head
    levels = range(spec.min_level, spec.max_level + 1)
    wrapper = HeadOnly(head.eval(), [f"P{level}" for level in levels])
    maps = tuple(torch.zeros(1, spec.scaling.endpoints_num_filters, feature_size(size, level),
                             feature_size(size, level)) for level in levels)
    flops = FlopCountAnalysis(wrapper, maps).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_module = flops.by_module_and_operator()
    modules = dict(wrapper.named_modules())
    return ModelCounts({k: dict(v) for k, v in by_module.items()},
                       {k: dict(flops.unsupported_ops(k)) for k in by_module},
                       {k: count_params(modules[k]) for k in by_module})


@pytest.mark.parametrize("name", ["spinenet-49s", "spinenet-mobile-49", "resnet50-fpn"])
def test_paper_size_figures_equal_fvcore_per_module(name):
    """The README's measured-vs-published table, at the paper's own input size: fvcore agrees module for module
    (the models whose trace takes seconds here; benchmarks/bench_counting.py checks all of them)."""
    spec = load_builtin(name)
    fast = count_model(spec, spec.input_size, "retinanet")
    assert count_differences(fast, fvcore(name, spec.input_size, "retinanet")) == []


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_with_retinanet_head_equals_fvcore_per_module(name):
    fast, reference = count_model(load_builtin(name), 128, "retinanet"), fvcore(name, 128, "retinanet")
    assert count_differences(fast, reference) == []
    assert fast.macs() == reference.macs() > 0
    # Backbone alone: the same modules with the same names, and the whole model is just the backbone.
    alone = count_model(load_builtin(name), 128, "none")
    assert subtree(alone, "backbone") == subtree(reference, "backbone")
    assert dict(alone.ops[""]) == dict(reference.ops["backbone"])
    assert alone.params[""] == reference.params["backbone"]


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_backbone_at_a_non_multiple_of_128_equals_fvcore(name):
    # 200 px: level sides 100, 50, 25, 13, 7, 4, 2 (odd sides, resize fallbacks, pools with kernel 5).
    assert count_differences(count_model(load_builtin(name), 200, "none"), fvcore(name, 200, "none")) == []


@pytest.mark.parametrize("name", BUILTIN_NAMES)
@pytest.mark.parametrize("size", [128, 200])
def test_builtin_classification_heads_equal_fvcore(name, size):
    for pooling in ("gap", "spp"):
        fast = count_model(load_builtin(name), size, "classification", pooling=pooling)
        head = fvcore_head_only(name, size, pooling)
        assert subtree(fast, "head") == subtree(head, "head")
        backbone = fvcore(name, size, "retinanet" if size == 128 else "none")
        for op in fast.ops[""].keys() | backbone.ops["backbone"].keys() | head.ops["head"].keys():
            assert fast.ops[""].get(op, 0) == backbone.ops["backbone"].get(op, 0) + head.ops["head"].get(op, 0)
        assert fast.params[""] == backbone.params["backbone"] + head.params["head"]


@pytest.mark.parametrize("name,head", [("spinenet-49s", "classification"), ("spinenet-mobile-49xs", "retinanet"),
                                       ("resnet50-fpn", "classification"), ("spinenet-49", "none")])
def test_analysis_is_the_same_with_either_counter(name, head):
    spec = load_builtin(name)
    fast = analyze(spec, 72, head).to_dict()
    slow = analyze(spec, 72, head, counter="fvcore").to_dict()
    assert (fast.pop("counter"), slow.pop("counter")) == ("fast", "fvcore")
    assert fast == slow


def test_verify_reports_agreement_and_differences():
    spec = load_builtin("spinenet-mobile-49xs")
    result = analyze(spec, 64, "retinanet", verify=True)
    assert (result.counter, result.verified, result.differences) == ("fast", True, [])
    assert analyze(spec, 64).verified is None
    fast = count_model(spec, 64, "retinanet")
    tampered = ModelCounts({**fast.ops, "backbone.stem_conv.0": {"conv": fast.ops["backbone.stem_conv.0"]["conv"] + 1}},
                           fast.uncounted, {**fast.params, "head": fast.params["head"] - 1})
    lines = count_differences(fast, tampered)
    assert lines == [f"backbone.stem_conv.0: conv fast {fast.ops['backbone.stem_conv.0']['conv']} != fvcore "
                     f"{fast.ops['backbone.stem_conv.0']['conv'] + 1}",
                     f"head: params fast {fast.params['head']} != fvcore {fast.params['head'] - 1}"]


def test_hand_derived_counts_of_spinenet49_stem_and_a_resampling():
    counts = count_model(load_builtin("spinenet-49"), 640, "none")
    # 7x7/2 conv 3 -> 64 at 320 x 320, BN (2 x elements), then the stem max-pool 3x3/2 SAME on 320 (padding 0
    # before, 1 after: max_pool2d's ceil_mode, no pad operator).
    assert dict(counts.ops["backbone.stem_conv.0.0"]) == {"conv": 64 * 3 * 49 * 320 * 320}
    assert dict(counts.ops["backbone.stem_conv.0.1"]) == {"batch_norm": 2 * 64 * 320 * 320}
    assert dict(counts.uncounted["backbone.stem_conv.1"]) == {"aten::max_pool2d": 1}
    # b3 (L4 residual, C=256) from stem0 (L2 bottleneck, 256 ch): 1x1 256 -> 32 at 160, 3x3/2 32 -> 32 to 80,
    # max-pool /2 to 40, 1x1 32 -> 256 at 40.
    resample = "backbone.blocks.b3.resample.0"
    assert counts.macs(resample) == 256 * 32 * 160 ** 2 + 32 * 32 * 9 * 80 ** 2 + 32 * 256 * 40 ** 2
    assert counts.params[resample] == 256 * 32 + 64 + 32 * 32 * 9 + 64 + 32 * 256 + 512
    assert dict(counts.uncounted[resample]) == {"aten::max_pool2d": 1}
    # b4 (L3) from b3 (L4, residual 256 ch): 1x1 256 -> 128 at 40, nearest x2 to 80 (output elements), 1x1 -> 512.
    assert dict(counts.ops["backbone.blocks.b4.resample.1"]) == {
        "conv": 256 * 128 * 40 ** 2 + 128 * 512 * 80 ** 2, "batch_norm": 2 * (128 * 40 ** 2 + 512 * 80 ** 2),
        "upsample_nearest2d": 128 * 80 ** 2}
    assert all(op not in MAC_OPS for op in counts.uncounted[""])


def test_ops_are_attributed_to_every_ancestor():
    counts = count_model(load_builtin("resnet50-fpn"), 256, "retinanet")
    for name in counts.params:
        if name:
            parent = name.rpartition(".")[0]
            assert counts.params[parent] >= counts.params[name]
            assert all(counts.ops[parent].get(op, 0) >= n for op, n in counts.ops[name].items())
    # The FPN's top-down upsampling and adds run in the backbone's own forward, not in any block.
    assert counts.ops["backbone"]["upsample_nearest2d"] == 256 * (16 ** 2 + 32 ** 2)
    # Two top-down adds and the 16 bottlenecks' residual adds, all in place; none out of place.
    assert "aten::add" not in counts.uncounted["backbone"]
    assert counts.uncounted["backbone"]["aten::add_"] == 2 + 3 + 4 + 6 + 3
    assert all("aten::add" not in counts.uncounted[f"backbone.blocks.c2_{n}"] for n in range(3))


def test_results_are_cached_read_only_and_match_a_fresh_count():
    spec = load_builtin("spinenet-96")
    first = count_model(spec, 512, "retinanet")
    assert count_model(spec, 512, "retinanet") is first
    with pytest.raises(TypeError):
        first.ops["head"]["conv"] = 0
    with pytest.raises(TypeError):
        first.params["head"] = 0
    result = analyze(spec, 512, "retinanet")
    result.blocks[0].macs = -1  # an Analysis is the caller's own copy
    assert analyze(spec, 512, "retinanet").blocks[0].macs > 0


@pytest.mark.parametrize("block_fn,repeats,stride,activation", [
    ("bottleneck", 2, 2, "relu"), ("residual", 1, 1, "swish"), ("mbconv", 2, 2, "swish"), ("mbconv", 1, 1, "relu")])
def test_standalone_block_group_equals_fvcore(block_fn, repeats, stride, activation):
    from fvcore.nn import FlopCountAnalysis

    group = instantiate(describe_block_group(block_fn, 24, 24, 17, repeats, stride, activation)).eval()
    flops = FlopCountAnalysis(group, torch.zeros(1, 24, 17, 17)).unsupported_ops_warnings(False)
    by_module = flops.by_module_and_operator()
    modules = dict(group.named_modules())
    reference = ModelCounts({k: dict(v) for k, v in by_module.items()},
                            {k: dict(flops.unsupported_ops(k)) for k in by_module},
                            {k: count_params(modules[k]) for k in by_module})
    fast = count_block_group(block_fn, 24, 24, 17, repeats, stride, activation)
    assert count_differences(fast, reference) == []


HEADS = st.sampled_from([("none", "gap"), ("retinanet", "gap"), ("classification", "gap"), ("classification", "spp")])
PROPERTY_SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def assert_fast_equals_fvcore(spec, size, head, pooling):
    fast = count_model(spec, size, head, num_classes=10, pooling=pooling)
    reference = count_with_fvcore(spec, size, head, num_classes=10, pooling=pooling)
    assert count_differences(fast, reference) == []


# Every example is used: the specs are valid by construction and kept quick to trace by their bounds (filter scale
# and repeats), not by rejecting the costly ones. Sizes are any integer, mostly not multiples of 128 (or of 32).
@PROPERTY_SETTINGS
@given(spec=spinenet_specs(family="spinenet", max_scale=1.0, max_repeats=2), size=st.integers(32, 160), head=HEADS)
def test_random_spinenet_specs_equal_fvcore(spec, size, head):
    assert_fast_equals_fvcore(spec, size, *head)


@settings(PROPERTY_SETTINGS, max_examples=15)
@given(spec=spinenet_specs(family="spinenet_mobile", max_scale=1.0, max_repeats=2), size=st.integers(32, 160),
       head=HEADS)
def test_random_mobile_specs_equal_fvcore(spec, size, head):
    assert_fast_equals_fvcore(spec, size, *head)


@settings(PROPERTY_SETTINGS, max_examples=3)
@given(spec=spinenet_specs(min_blocks=LIMITS["max_blocks"] - 8, max_blocks=LIMITS["max_blocks"], max_scale=0.25,
                           max_repeats=1), size=st.integers(33, 96), head=HEADS)
def test_random_specs_near_the_block_limit_equal_fvcore(spec, size, head):
    assert_fast_equals_fvcore(spec, size, *head)


@settings(PROPERTY_SETTINGS, max_examples=12)
@given(spec=st.one_of(spinenet_specs(family="spinenet", max_scale=1.0, max_repeats=2),
                      spinenet_specs(family="spinenet_mobile", max_scale=1.0, max_repeats=1), resnet_fpn_specs()),
       size=st.tuples(st.integers(32, 160), st.integers(32, 160)), head=HEADS)
def test_random_specs_at_non_square_sizes_equal_fvcore(spec, size, head):
    """Height x width inputs: every module's counts equal fvcore's trace of the real module run on (1, 3, H, W)."""
    assert_fast_equals_fvcore(spec, size, *head)


@settings(PROPERTY_SETTINGS, max_examples=8)
@given(spec=resnet_fpn_specs(), size=st.integers(32, 160), head=HEADS)
def test_random_resnet_fpn_specs_equal_fvcore(spec, size, head):
    assert_fast_equals_fvcore(spec, size, *head)


def test_concurrent_analyses_agree_with_serial_ones():
    jobs = [(name, size, head) for name in BUILTIN_NAMES for size in (96, 160, 224) for head in ("none", "retinanet")]
    clear_cache()
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda job: analyze(load_builtin(job[0]), job[1], job[2]).to_dict(), jobs * 2))
    clear_cache()
    serial = [analyze(load_builtin(name), size, head).to_dict() for name, size, head in jobs * 2]
    assert parallel == serial
