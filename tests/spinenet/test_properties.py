"""Property tests: random valid specs build on meta, run on the CPU with the expected output shapes, and
round-trip through every import/export format."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forward_checks import check_real_forward
from spec_strategies import resnet_fpn_specs, spinenet_specs
from spinescope.spinenet.build import build_model
from spinescope.spinenet.formats import dumps, loads, parse_tuples

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.slow  # builds and runs 25 random models
@settings(max_examples=25, **SETTINGS)
@given(spec=st.one_of(spinenet_specs(max_scale=1.0, max_repeats=2), resnet_fpn_specs()),
       size=st.integers(32, 96), head=st.sampled_from(["none", "retinanet", "classification"]))
def test_random_specs_build_on_meta_and_run_on_cpu(spec, size, head):
    meta = build_model(spec, head, size, device="meta")
    assert all(p.device.type == "meta" for p in meta.parameters())
    check_real_forward(spec, size)
    check_head_forward(spec, size, head)


@pytest.mark.slow  # builds and runs random models at random non-square sizes
@settings(max_examples=12, **SETTINGS)
@given(spec=st.one_of(spinenet_specs(max_scale=1.0, max_repeats=2), spinenet_specs(family="spinenet_mobile"),
                      resnet_fpn_specs()),
       size=st.tuples(st.integers(32, 112), st.integers(32, 112)),
       head=st.sampled_from(["none", "retinanet", "classification"]))
def test_random_specs_run_on_non_square_inputs(spec, size, head):
    """Any height x width: each level is ceil(H / 2^l) x ceil(W / 2^l), the head's maps follow."""
    check_real_forward(spec, size)
    check_head_forward(spec, size, head)


def check_head_forward(spec, size, head):
    """The head runs on the real features; its outputs have the shapes its definition gives, by hand: RetinaNet
    num_classes x anchors and 4 x anchors maps at ceil(side / 2**level) per axis and level; classification 1 x
    1000. `size` is a side or (height, width)."""
    height, width = (size, size) if isinstance(size, int) else size
    model = build_model(spec, head, size)
    with torch.no_grad():
        out = model(torch.zeros(1, 3, height, width))
    if head == "classification":
        assert tuple(out.shape) == (1, 1000)
    elif head == "retinanet":
        side = {f"P{level}": (-(-height // 2 ** level), -(-width // 2 ** level))
                for level in range(spec.min_level, spec.max_level + 1)}
        assert list(out) == list(side)
        anchors = spec.head.num_anchors
        for level, (classes, boxes) in out.items():
            assert tuple(classes.shape) == (1, spec.head.num_classes * anchors, *side[level])
            assert tuple(boxes.shape) == (1, 4 * anchors, *side[level])


@settings(max_examples=60, **SETTINGS)
@given(spec=st.one_of(spinenet_specs(), resnet_fpn_specs()))
def test_random_specs_round_trip_every_format(spec):
    assert loads(dumps(spec, "json")) == spec
    assert loads(dumps(spec, "yaml")) == spec
    if spec.family != "resnet_fpn":
        assert parse_tuples(dumps(spec, "tuples"), base=spec) == spec
