"""Latency runs in a real worker process on the CPU at small inputs: figures, interleaving, options, the memory
guard, a worker that dies, runs out of memory, times out or is cancelled; a job that starts nothing before
`start()`, `wait()`, and a job that writes no history (its caller does)."""
import math
import os
import threading
import time

import numpy as np
import psutil
import pytest

from spinescope.analysis.latency.errors import LatencyError
from spinescope.analysis.latency.history import list_results, save_results
from spinescope.analysis.latency.job import LatencyJob, run_latency, start_latency_job
from spinescope.analysis.latency.request import LatencyRequest, cuda_available
from spinescope.analysis.latency.worker import FAULT_VARIABLE
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.spec import spec_hash

SIZE = 64
FAST = dict(device="cpu", threads=1, iters=4, warmup=1, timeout=240)


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    monkeypatch.delenv(FAULT_VARIABLE, raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def small_spec():
    return load_builtin("spinenet-mobile-49xs")


def test_two_models_interleaved_with_figures_and_history(spinescope_home):
    spine, mobile = load_builtin("spinenet-49s"), load_builtin("spinenet-mobile-49xs")
    job = start_latency_job([LatencyRequest(spine, SIZE), LatencyRequest(mobile, SIZE)], **FAST)
    seen = set()
    while not job.done():
        seen.add(job.progress().phase)
        time.sleep(0.02)
    first, second = job.result()
    assert job.progress().phase == "done" and job.progress().fraction == 1.0
    assert "measure" in seen  # the phase long enough to be seen by polling every 20 ms

    # The worker timed A B A B ... (recorded by the worker, not by the caller).
    assert job.run_order == [first.label, second.label] * FAST["iters"]
    for result, spec in ((first, spine), (second, mobile)):
        figures = [result.median_ms, result.p10_ms, result.p90_ms, result.mean_ms, result.min_ms, result.throughput]
        assert all(math.isfinite(value) and value > 0 for value in figures)
        assert result.min_ms <= result.p10_ms <= result.median_ms <= result.p90_ms
        assert len(result.samples_ms) == result.iterations == FAST["iters"]
        assert result.median_ms == pytest.approx(float(np.median(result.samples_ms)))
        assert result.throughput == pytest.approx(result.batch / (result.median_ms / 1e3))
        assert result.spec_hash == spec_hash(spec) and result.input_size == (SIZE, SIZE)
        assert (result.device, result.threads, result.dtype) == ("cpu", 1, "float32")
        assert result.memory_format == "contiguous" and result.environment["threads"] == 1
        # What the time estimate needs to bring this rate to an idle machine: the cores and the load before the run.
        assert result.environment["cores"] == os.cpu_count()
        assert isinstance(result.environment["load_average"], float) and result.environment["load_average"] >= 0
        assert result.torch_version.startswith("2.") and result.device_name
        # Peak = exact weights + measured growth of the resident set in one forward pass; the meta-device
        # estimate made before the run lands close to it.
        model = build_model(spec, "none", SIZE)
        assert result.weight_bytes == sum(t.numel() * t.element_size() for t in [*model.parameters(),
                                                                                 *model.buffers()])
        assert result.peak_memory_bytes == result.weight_bytes + result.activation_bytes
        assert result.activation_bytes > 0
        assert result.estimated_memory_bytes == pytest.approx(result.peak_memory_bytes, rel=0.25)
    assert first.ratio_to_first == 1.0
    assert second.ratio_to_first == pytest.approx(second.median_ms / first.median_ms)
    assert {"estimate_s", "start_s", "build_s", "warmup_s", "measure_s", "total_s"} <= set(job.phase_times)
    assert job.phase_times["measure_s"] < job.phase_times["total_s"]

    # The job alone stores nothing; its caller writes the history, one row per result.
    assert first.history_id is None and second.history_id is None
    assert not (spinescope_home / "history.sqlite").exists()
    (first, second), warning = save_results(job.result())
    assert warning is None
    stored = list_results(limit=10)
    assert [entry.id for entry in stored] == sorted([first.history_id, second.history_id], reverse=True)
    assert {entry.spec_hash for entry in stored} == {first.spec_hash, second.spec_hash}
    assert stored[-1].median_ms == first.median_ms and stored[-1].run_id == job.run_id
    assert (spinescope_home / "history.sqlite").is_file()


def test_options_batch_bf16_channels_last_fold_bn(small_spec):
    request = LatencyRequest(load_builtin("spinenet-49s"), SIZE, batch=2, precision="bf16", channels_last=True,
                             fold_bn=True, label="49S folded")
    (result,) = run_latency([request], **FAST)
    assert result.label == "49S folded" and result.batch == 2
    assert result.dtype == "bfloat16 (autocast)" and result.memory_format == "channels_last"
    assert result.fold_bn and result.bn_folded > 100 and result.bn_remaining == 0
    assert result.throughput == pytest.approx(2 / (result.median_ms / 1e3))
    assert result.settings == {"input_size": SIZE, "head": "none", "batch": 2, "device": "cpu", "precision": "bf16",
                               "channels_last": True, "fold_bn": True, "compile": False, "threads": 1,
                               "iterations": FAST["iters"], "warmup": FAST["warmup"]}
    assert result.to_dict()["name"] == "49S folded" and "samples_ms" not in result.to_dict()


def test_memory_guard_refuses_before_starting(small_spec, spinescope_home):
    job = start_latency_job([LatencyRequest(small_spec, SIZE)], memory_limit_bytes=2**20, **FAST)
    with pytest.raises(LatencyError) as refused:
        job.result(timeout=120)
    assert refused.value.kind == "memory"
    message = str(refused.value)
    assert message.startswith("refused:") and "configured limit is 1 MiB" in message and "\n" not in message
    assert job.worker.poll() is not None  # the worker, started early, got no payload and was stopped
    assert not (spinescope_home / "history.sqlite").exists()


def test_memory_guard_refuses_a_batch_beyond_the_machine():
    huge = LatencyRequest(load_builtin("spinenet-49"), 1024, batch=4096)
    with pytest.raises(LatencyError, match=r"refused: the run needs about [\d,]+ MiB .* available RAM") as refused:
        run_latency([huge], **FAST)
    assert refused.value.kind == "memory"


@pytest.mark.parametrize("fault,kind,message", [
    ("kill", "crash", "the latency worker was killed by SIGKILL (most likely the system ran out of memory)"),
    ("exit", "crash", "the latency worker exited with status 3 without a result"),
    ("oom", "oom", "out of memory: tried to allocate 1,073,741,824 MiB"),
])
def test_worker_failure_is_one_clean_error(small_spec, monkeypatch, spinescope_home, fault, kind, message):
    monkeypatch.setenv(FAULT_VARIABLE, fault)
    job = start_latency_job([LatencyRequest(small_spec, SIZE)], **FAST)
    with pytest.raises(LatencyError) as failed:
        job.result(timeout=180)
    assert failed.value.kind == kind
    assert str(failed.value) == message
    assert job.progress().phase == "failed" and job.progress().message == message
    assert job.worker.poll() is not None
    assert list_results() == []  # nothing stored for a failed run


def test_time_limit_kills_the_worker(small_spec, monkeypatch):
    monkeypatch.setenv(FAULT_VARIABLE, "hang")  # the worker hangs while measuring: only the time limit ends it
    job = start_latency_job([LatencyRequest(small_spec, SIZE)], **{**FAST, "timeout": 1.5})
    expected = r"^timed out after 1.5 s (while|during) [\w -]+(\(\d+/\d+\))?; raise the time limit"
    with pytest.raises(LatencyError, match=expected) as failed:
        job.result(timeout=60)
    assert failed.value.kind == "timeout"
    assert job.worker.poll() is not None


def test_cancel_while_measuring(small_spec):
    job = start_latency_job([LatencyRequest(small_spec, SIZE)], **{**FAST, "iters": 100_000})
    deadline = time.monotonic() + 180
    while not (job.progress().phase == "measure" and job.progress().done > 0):
        assert time.monotonic() < deadline and not job.done(), job.progress()
        time.sleep(0.05)
    progress = job.progress()
    assert progress.total == 100_000 and 0 < progress.fraction < 1
    job.cancel()
    with pytest.raises(LatencyError, match="cancelled") as cancelled:
        job.result(timeout=30)
    assert cancelled.value.kind == "cancelled" and job.progress().phase == "cancelled"
    assert job.worker.poll() is not None
    assert list_results() == []


@pytest.mark.parametrize("options,message", [
    (dict(precision="fp16"), "fp16 is measured on a GPU only; on the CPU use bf16 or fp32"),
    (dict(batch=0), "batch 0 is out of range"),
    (dict(input_size=10**6), "input size 1000000 is out of range"),
    (dict(head="mask"), "unknown head 'mask'"),
])
def test_invalid_request_options(small_spec, options, message):
    with pytest.raises(LatencyError, match=message) as invalid:
        start_latency_job([LatencyRequest(small_spec, **{"input_size": SIZE, **options})], **FAST)
    assert invalid.value.kind == "invalid"


NO_GPU = pytest.mark.skipif(cuda_available(), reason="a CUDA GPU is present: device cuda is valid here")


@pytest.mark.parametrize("options,message", [
    pytest.param(dict(device="cuda"), "device cuda: no CUDA GPU found", marks=NO_GPU),
    (dict(device="tpu"), "unknown device 'tpu'"),
    (dict(iters=0), "iterations 0 out of range"),
    (dict(timeout=0), "time limit must be a positive number"),
])
def test_invalid_run_options(small_spec, options, message):
    with pytest.raises(LatencyError, match=message):
        start_latency_job([LatencyRequest(small_spec, SIZE)], **{**FAST, **options})


def test_memory_limit_from_the_environment(small_spec, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_MAX_MEMORY_MIB", "2")
    job = start_latency_job([LatencyRequest(small_spec, SIZE)], **FAST)
    with pytest.raises(LatencyError, match="configured limit is 2 MiB") as refused:
        job.result(timeout=120)
    assert refused.value.kind == "memory"
    monkeypatch.setenv("SPINESCOPE_MAX_MEMORY_MIB", "lots")
    with pytest.raises(LatencyError, match="SPINESCOPE_MAX_MEMORY_MIB='lots' is not a number"):
        start_latency_job([LatencyRequest(small_spec, SIZE)], **FAST)


def _children() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


def test_constructing_starts_nothing_until_start_then_wait(small_spec, spinescope_home):
    threads, children = set(threading.enumerate()), _children()
    count = threading.active_count()
    job = LatencyJob([LatencyRequest(small_spec, SIZE)], **FAST)
    assert threading.active_count() <= count and set(threading.enumerate()) <= threads  # no thread started
    assert _children() <= children and job.worker is None  # no process started
    assert not job.started() and not job.done() and job.progress().phase == "pending"
    with pytest.raises(RuntimeError, match="not started"):
        job.wait(0)

    assert job.start() is job and job.started()
    with pytest.raises(RuntimeError, match="already started"):
        job.start()
    assert job.wait(0) is False  # spawning and estimating take far longer than nothing
    assert job.wait(180) is True and job.done()
    assert job.wait(0) is True  # an ended job answers at once
    (result,) = job.result(timeout=0)
    assert result.median_ms > 0 and job.progress().phase == "done"
    assert job.worker.poll() is not None
    assert list_results() == [] and result.history_id is None  # the job alone writes no history


def test_run_latency_stores_as_the_jobs_caller(small_spec, spinescope_home):
    (result,) = run_latency([LatencyRequest(small_spec, SIZE)], **FAST)  # history=False: see tests/hardening/test_limits.py
    assert [entry.id for entry in list_results()] == [result.history_id] == [1]
