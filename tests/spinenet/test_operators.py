"""The operator table against PyTorch: for every leaf kind, the module its entry builds has the parameter tensors,
buffer bytes and output shape the entry says (a real module run on a real tensor)."""
import pytest
import torch

from spinescope.spinenet.operators import LEAF_KINDS, operator

# One example per leaf kind: (attrs, input shape (channels, height, width)).
EXAMPLES = {
    "conv": ({"in_channels": 4, "out_channels": 6, "kernel": 3, "stride": 2, "padding": 1, "groups": 2,
              "bias": True}, (4, 9, 10)),
    "batch_norm": ({"channels": 5}, (5, 3, 4)),
    "activation": ({"function": "swish"}, (3, 4, 4)),
    "linear": ({"in_features": 12, "out_features": 7}, (12, 1, 1)),
    "adaptive_avg_pool": ({"bins": 2}, (3, 7, 5)),
    "adaptive_max_pool": ({"bins": 3}, (3, 7, 5)),
    "max_pool_same": ({"kernel": 3, "stride": (2, 4)}, (2, 9, 10)),
    "identity": ({}, (3, 2, 2)),
}


def test_every_leaf_kind_has_an_example():
    assert sorted(EXAMPLES) == sorted(LEAF_KINDS)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_the_module_has_the_entrys_parameters_buffers_and_output(kind):
    attrs, shape = EXAMPLES[kind]
    entry = operator(kind)
    module = entry.module(attrs)
    assert tuple(p.numel() for p in module.parameters()) == entry.parameters(attrs)
    assert sum(b.numel() * b.element_size() for b in module.buffers()) == entry.buffer_bytes(attrs)
    x = torch.randn(1, *shape)
    with torch.no_grad():
        y = module(x.flatten(1) if kind == "linear" else x)
    expected = tuple(entry.output(attrs, shape))
    if kind == "linear":  # (batch, features) in PyTorch, (features, 1, 1) in the description
        assert tuple(y.shape) == (1, expected[0]) and expected[1:] == (1, 1)
    else:
        assert tuple(y.shape) == (1, *expected)
