"""Sampled candidates count exactly as fvcore counts the built module (a second counter, tracing real torch
modules), the head included: on a small subset at a small input size."""
import pytest

from spinescope.analysis.counting import count_differences, count_model, count_with_fvcore
from spinescope.analysis.search.space import make_space, sample_many

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def test_samples_count_exactly_as_fvcore():
    space = make_space(input_size=128)
    for spec, metrics in sample_many(space, 2, seed=11)[0]:
        traced = count_with_fvcore(spec, 128, "retinanet")
        assert count_differences(count_model(spec, 128, "retinanet"), traced) == []
        assert metrics["macs"] == traced.macs("") and metrics["params"] == traced.params[""]
