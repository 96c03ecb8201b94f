"""Results built from the worker's result message, written here by hand: pure functions, no process, no file."""
import json

import numpy as np
import pytest

from spinescope.analysis.latency.request import LatencyRequest
from spinescope.analysis.latency.results import (LatencyResult, build_results, dtype_name, percentile, run_order,
                                      worker_phase_times)
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.spec import spec_hash

ENVIRONMENT = {"torch_version": "2.99.0+test", "device_name": "Test CPU", "threads": 3, "python": "3.11.7",
               "platform": "Linux"}


def _figures(label, samples, weight=1000, activation=500, build_s=0.5, compile_s=None, folded=0, remaining=7):
    return {"label": label, "build_s": build_s, "compile_s": compile_s, "weight_bytes": weight,
            "activation_bytes": activation, "bn_folded": folded, "bn_remaining": remaining, "samples_ms": samples}


# A result event as the worker writes it for two models timed A B A B A B A B.
MESSAGE = {
    "event": "result",
    "models": [_figures("SpineNet-49S", [10.0, 12.0, 11.0, 30.0], weight=4000, activation=1000),
               _figures("fast one", [5.0, 6.0, 5.5, 5.0], compile_s=2.5, folded=3, remaining=0)],
    "order": [0, 1, 0, 1, 0, 1, 0, 1],
    "environment": ENVIRONMENT,
    "phases": {"warmup_s": 0.25, "measure_s": 1.5},
}


@pytest.fixture(scope="module")
def requests():
    return [LatencyRequest(load_builtin("spinenet-49s"), 64),
            LatencyRequest(load_builtin("spinenet-mobile-49xs"), 64, batch=4, precision="bf16", channels_last=True,
                           fold_bn=True, compile=True, label="fast one")]


def _build(requests, message=MESSAGE):
    return build_results(requests, json.loads(json.dumps(message)), [6000, 700], device="cpu", warmup=2,
                         run_id="run-1", created_at="2026-01-02T03:04:05+00:00")


def test_figures_from_samples(requests):
    first, second = _build(requests)
    assert first.samples_ms == [10.0, 12.0, 11.0, 30.0] and first.iterations == 4
    assert first.median_ms == 11.5 and first.mean_ms == 15.75 and first.min_ms == 10.0
    assert first.p10_ms == pytest.approx(np.percentile([10.0, 12.0, 11.0, 30.0], 10)) == pytest.approx(10.3)
    assert first.p90_ms == pytest.approx(np.percentile([10.0, 12.0, 11.0, 30.0], 90)) == pytest.approx(24.6)
    assert first.throughput == pytest.approx(1 / 0.0115)
    assert second.median_ms == 5.25 and second.throughput == pytest.approx(4 / 0.00525)
    assert first.ratio_to_first == 1.0 and second.ratio_to_first == pytest.approx(5.25 / 11.5)


def test_request_options_and_worker_figures_carried_over(requests):
    first, second = _build(requests)
    assert (first.label, second.label) == ("SpineNet-49S", "fast one")  # the labels the worker echoed
    assert first.spec_name == "SpineNet-49S" and first.spec_hash == spec_hash(requests[0].spec)
    assert (first.input_size, first.head, first.batch, first.device) == ((64, 64), "none", 1, "cpu")
    assert (first.dtype, first.memory_format, first.fold_bn, first.compiled) == ("float32", "contiguous", False,
                                                                                False)
    assert (second.dtype, second.memory_format, second.fold_bn, second.compiled) == ("bfloat16 (autocast)",
                                                                                    "channels_last", True, True)
    assert first.peak_memory_bytes == 5000 and (first.weight_bytes, first.activation_bytes) == (4000, 1000)
    assert (first.estimated_memory_bytes, second.estimated_memory_bytes) == (6000, 700)
    assert (first.compile_s, second.compile_s, second.build_s) == (None, 2.5, 0.5)
    assert (second.bn_folded, second.bn_remaining) == (3, 0)
    assert first.device_name == "Test CPU" and first.threads == 3 and first.torch_version == "2.99.0+test"
    assert first.environment == ENVIRONMENT and first.warmup == 2
    assert (first.run_id, first.created_at, first.history_id) == ("run-1", "2026-01-02T03:04:05+00:00", None)
    assert second.settings == {"input_size": 64, "head": "none", "batch": 4, "device": "cpu", "precision": "bf16",
                               "channels_last": True, "fold_bn": True, "compile": True, "threads": 3,
                               "iterations": 4, "warmup": 2}
    assert isinstance(first, LatencyResult) and json.loads(json.dumps(first.to_dict()))["name"] == "SpineNet-49S"


def test_building_is_pure(requests):
    message = json.loads(json.dumps(MESSAGE))
    options = dict(device="cpu", warmup=2, run_id="run-1", created_at="2026-01-02T03:04:05+00:00")
    first = build_results(requests, message, [6000, 700], **options)
    assert message == MESSAGE  # the message the results were built from is not modified
    second = build_results(requests, json.loads(json.dumps(MESSAGE)), [6000, 700], **options)
    assert first == second  # no clock, no randomness: the same message gives the same results


def test_order_and_phase_times():
    assert run_order(["A", "B"], MESSAGE) == ["A", "B"] * 4
    assert worker_phase_times(MESSAGE) == {"build_s": 1.0, "compile_s": 2.5, "warmup_s": 0.25, "measure_s": 1.5}


def test_helpers():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5 and percentile([7.0], 10) == 7.0
    assert [dtype_name(p) for p in ("fp32", "fp16", "bf16")] == ["float32", "float16 (autocast)",
                                                                 "bfloat16 (autocast)"]
