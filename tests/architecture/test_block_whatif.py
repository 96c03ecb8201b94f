"""Block-type what-if and scale profile: hand-derived block costs, model deltas that equal a real edit, fvcore."""
from dataclasses import replace

import pytest
import torch
from fvcore.nn import FlopCountAnalysis

from spinescope.analysis.architecture.block_whatif import block_whatif
from spinescope.analysis.counting import analyze, count_params
from spinescope.analysis.architecture.scale_profile import scale_profile
from spinescope.spinenet.describe import describe_block_group
from spinescope.spinenet.modules import instantiate
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.validate import check_spec


def by_type(options):
    return {option.block_fn: option for option in options}


def test_bottleneck_reductions_against_two_3x3_convs_at_256_channels():
    # SpineNet-49's b2: level 2, 256 channels in and out, 160 x 160 at 640 px.
    what = block_whatif(load_builtin("spinenet-49"), "b2", 640)
    same = by_type(what.same_channels)
    assert (what.level, what.size, what.block_fn, what.repeats) == (2, 160, "bottleneck", 1)
    convs = 256 * 64 + 64 * 64 * 9 + 64 * 256  # 1x1 256->64, 3x3 64->64, 1x1 64->256; identity shortcut
    assert (same["bottleneck"].params, same["bottleneck"].macs) == (convs + 2 * (64 + 64 + 256), convs * 160 ** 2)
    two_3x3 = 2 * 256 * 256 * 9
    assert (same["residual"].params, same["residual"].macs) == (two_3x3 + 2 * 2 * 256, two_3x3 * 160 ** 2)
    expanded, reduced = 6 * 256, int(256 * 0.2)
    mbconv_convs = 256 * expanded + expanded * 9 + expanded * 256
    se = expanded * reduced + reduced + reduced * expanded + expanded
    assert same["mbconv"].params == mbconv_convs + se + 2 * (expanded + expanded + 256)
    assert same["mbconv"].macs == mbconv_convs * 160 ** 2 + 2 * expanded * reduced
    assert same["bottleneck"].current and not same["residual"].current
    assert same["residual"].macs / same["bottleneck"].macs > 16  # what the 1x1 reductions save


def test_as_specified_options_and_model_deltas_equal_a_real_edit():
    spec = load_builtin("spinenet-49")
    what = block_whatif(spec, "b3", 640, head="retinanet")  # b3: level-4 residual block
    options = by_type(what.as_specified)
    assert (options["residual"].in_channels, options["residual"].out_channels) == (256, 256)
    assert (options["bottleneck"].in_channels, options["bottleneck"].out_channels) == (1024, 1024)
    assert options["residual"].model_params_delta == 0 and options["residual"].model_macs_delta == 0
    assert options["mbconv"].model_params_delta is None  # not a SpineNet block type
    edited = check_spec(spec.with_blocks(replace(b, block_fn="bottleneck") if b.id == "b3" else b for b in spec.blocks))
    before, after = analyze(spec, 640, "retinanet"), analyze(edited, 640, "retinanet")
    assert options["bottleneck"].model_params_delta == after.params - before.params
    assert options["bottleneck"].model_macs_delta == after.macs - before.macs
    assert after.blocks[3].block_params == options["bottleneck"].params  # the retyped block group itself


@pytest.mark.parametrize("name,block_id", [("resnet50-fpn", "c3_0"), ("spinenet-mobile-49", "stem1"),
                                           ("spinenet-96", "stem0")])
def test_same_channel_options_equal_fvcore_on_a_real_block_group(name, block_id):
    what = block_whatif(load_builtin(name), block_id, 128)
    assert what.stride == (2 if block_id in ("c3_0", "stem1") else 1)
    for option in what.same_channels:
        group = instantiate(describe_block_group(option.block_fn, option.in_channels, option.width, what.size,
                                                 what.repeats, what.stride, load_builtin(name).activation)).eval()
        flops = FlopCountAnalysis(group, torch.zeros(1, option.in_channels, what.size, what.size))
        flops.unsupported_ops_warnings(False)
        macs = sum(n for op, n in flops.by_operator().items() if op == "conv")
        assert (option.params, option.macs) == (count_params(group), macs)


def test_unknown_block():
    with pytest.raises(KeyError):
        block_whatif(load_builtin("spinenet-49"), "b99")
    with pytest.raises(KeyError):
        block_whatif(load_builtin("resnet50-fpn"), "P3")


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_scale_profile_tells_permuted_from_decreased(name):
    profile = scale_profile(load_builtin(name))
    expected = "scale-decreased" if name.startswith("resnet") else "scale-permuted"
    assert profile.kind == expected
    assert [p.order for p in profile.points] == list(range(len(profile.points)))


def test_scale_profile_of_spinenet49_and_resnet50():
    profile = scale_profile(load_builtin("spinenet-49"))
    levels = [p.level for p in profile.points]
    assert levels == [2, 2, 2, 4, 3, 4, 6, 4, 5, 7, 5, 5, 4, 3, 5, 7, 6]
    # 2,2,2 | 4 3 4 6 4 5 7 5 5 4 3 5 7 6: 13 changes of level, 6 of them to a finer level.
    assert (profile.level_changes, profile.finer_steps) == (13, 6)
    resnet = scale_profile(load_builtin("resnet50-fpn"))
    assert (resnet.level_changes, resnet.finer_steps, resnet.reversals) == (3, 0, 0)
    assert [p.id for p in resnet.points][-5:] == ["P5", "P4", "P3", "P6", "P7"]


def test_the_seeds_worked_examples_as_the_tool_counts_them():
    """Section 13 of the reference page: Inception 3a 387,072 -> 157,184 weights; one 3x3 conv at 256 channels
    589,824 MACs per output pixel against the bottleneck's 69,632 (about 8.5x)."""
    from spinescope.analysis.architecture.one_by_one import bottleneck_vs_3x3, inception_3a

    inception, bottleneck = inception_3a(), bottleneck_vs_3x3()
    assert (inception.without, inception.with_reductions) == (387_072, 157_184)
    assert (bottleneck.without, bottleneck.with_reductions) == (589_824, 69_632)
    assert round(bottleneck.ratio, 1) == 8.5
    # The block-type what-if of a real block reproduces the per-pixel figures: SpineNet-49's b2 (256 channels,
    # 160 x 160 at 640 px) as a bottleneck, and as two 3x3 convs (the residual block).
    same = by_type(block_whatif(load_builtin("spinenet-49"), "b2", 640).same_channels)
    assert same["bottleneck"].macs == 69_632 * 160 * 160
    assert same["residual"].macs == 2 * 589_824 * 160 * 160


def test_whatif_cli_prints_both_views_and_the_worked_examples():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]

    def run(*args):
        return subprocess.run([sys.executable, "-m", "spinescope", "whatif", *args], cwd=root, capture_output=True,
                              text=True, timeout=120)

    result = run("spinenet-49", "b2")
    assert result.returncode == 0, result.stderr
    assert "bottleneck       256->64->256" in result.stdout and "69,632 (current)" in result.stdout
    assert "387,072 -> 157,184 weights" in result.stdout and "589,824 -> 69,632 MACs per output pixel" in result.stdout
    wide = run("spinenet-49", "b2", "--input-size", "1333x800", "--json")
    assert wide.returncode == 0, wide.stderr
    import json
    data = json.loads(wide.stdout)
    assert data["size"] == "334x200" and data["input_size"] == "1333x800"
    assert by_type_dicts(data["same_channels"])["bottleneck"]["macs"] == 69_632 * 334 * 200
    bad = run("spinenet-49", "b<99>")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no block 'b<99>' in SpineNet-49" in bad.stderr


def by_type_dicts(options):
    return {option["block_fn"]: option for option in options}
