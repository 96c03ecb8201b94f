"""The layout's input channels of every node (the Explore table's "in ch", the graph's hover) are those of the
module built for it: the first conv of each stem block and of each block's group, in every scale-permuted
built-in (stem0 reads the stem conv's 64 channels in SpineNet, not its own 256 outputs)."""
import pytest
import torch

from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import builtin_names, load_builtin
from spinescope.spinenet.registry import family_of

SCALE_PERMUTED = [name for name in builtin_names() if family_of(load_builtin(name)).has_blocks]


@pytest.mark.parametrize("name", SCALE_PERMUTED)
def test_node_input_channels_are_the_built_modules(name):
    spec = load_builtin(name)
    layout = family_of(spec).resolve(spec, 128)
    blocks = build_model(spec, "none", 128, device="meta").backbone.blocks
    for node in layout.nodes:
        group = blocks[node.id] if node.role == "stem" else blocks[node.id].group
        first_conv = next(module for module in group.modules() if isinstance(module, torch.nn.Conv2d))
        assert node.in_channels == first_conv.in_channels, node.id
    assert len(SCALE_PERMUTED) == 8


def test_spinenet_49_stem_chain():
    spec = load_builtin("spinenet-49")
    stem0, stem1 = family_of(spec).resolve(spec, 640).nodes[:2]
    assert (stem0.in_channels, stem0.out_channels, stem1.in_channels) == (64, 256, 256)
