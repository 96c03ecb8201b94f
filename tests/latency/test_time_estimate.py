"""The CPU time estimate (analysis.latency.time_estimate): from the last measured rate in the real history file
(tmp_path) and the machine's load, with a spread; every figure below is worked out by hand."""
from dataclasses import replace

import pytest

from spinescope.analysis.counting.fast import count_model
from spinescope.analysis.latency.history import list_results, save_results
from spinescope.analysis.latency.results import LatencyResult
from spinescope.analysis.latency.time_estimate import (TimeEstimate, busy_warning, closest_rate, estimate_run, load_warning,
                                                       measured_rate, slowdown)
from spinescope.analysis.latency.time_estimate import CPU_MACS_PER_SECOND
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.spec import spec_hash


def stored(tmp_path, *results):
    path = tmp_path / "history.sqlite"
    _, warning = save_results(list(results), path)
    assert warning is None
    return path


def result(spec_hash="h", median=100.0, device="cpu", precision="fp32", batch=2, threads=2, environment=None,
           when="00", label="SpineNet-49S", input_size=64):
    """A made-up stored result: p10 = 0.8 x median, p90 = 1.25 x median (nothing measured)."""
    return LatencyResult(
        label=label, spec_name=label, spec_hash=spec_hash, input_size=input_size, head="none", batch=batch,
        device=device, device_name="Test CPU", precision=precision, dtype="float32", memory_format="contiguous",
        fold_bn=False, compiled=False, threads=threads, iterations=3, warmup=1, median_ms=median,
        p10_ms=median * 0.8, p90_ms=median * 1.25, mean_ms=median, min_ms=median * 0.8, throughput=1.0,
        peak_memory_bytes=1, weight_bytes=1, activation_bytes=0, estimated_memory_bytes=1, build_s=0.1,
        compile_s=None, bn_folded=0, bn_remaining=1, ratio_to_first=1.0, torch_version="2.0.0+cpu",
        environment=environment if environment is not None else {"cores": 2, "load_average": 2.0},
        run_id=f"run-{when}", created_at=f"2026-01-05T10:{when}:00+00:00", samples_ms=[median])


def test_slowdown_is_one_while_the_threads_fit_the_cores_and_grows_with_the_load():
    assert slowdown(0.0, 2, 2) == 1.0 and slowdown(0.5, 1, 2) == 1.0
    assert slowdown(2.0, 2, 2) == 2.0  # 4 runnable tasks on 2 cores: half the time each
    assert slowdown(6.0, 2, 2) == 4.0


def test_a_stored_rate_is_brought_to_an_idle_machine_with_the_load_it_was_measured_under(tmp_path):
    (entry,) = list_results(path=stored(tmp_path, result()))
    rate = measured_rate(entry, macs_per_image=1e9)
    # 2 images x 1e9 MACs in 100 ms = 2e10 MAC/s under load 2 with 2 threads on 2 cores (twice as slow as idle).
    assert rate.median == pytest.approx(4e10)
    assert rate.fast == pytest.approx(2e9 * 2 / 0.080) and rate.slow == pytest.approx(2e9 * 2 / 0.125)


def test_a_row_stored_without_the_load_counts_as_measured_on_an_idle_machine(tmp_path):
    (entry,) = list_results(path=stored(tmp_path, result(environment={"threads": 2})))
    assert measured_rate(entry, macs_per_image=1e9).median == pytest.approx(2e10)


def test_the_estimate_scales_the_rate_by_the_load_now_with_the_spread_of_the_passes_and_the_load(tmp_path):
    (entry,) = list_results(path=stored(tmp_path, result()))
    rate = measured_rate(entry, macs_per_image=1e9)
    estimate = estimate_run(2e9, 10, threads=2, rate=rate, loads=(2.0, 1.0, 3.0), cores=2)
    # 2e10 MACs: 0.5 s idle at 4e10 MAC/s; load 2 doubles it; + 4 s to start the worker.
    assert estimate.seconds == pytest.approx(4 + 0.5 * 2)
    assert estimate.low_s == pytest.approx(3 + 2e10 / 5e10 * 1.5)  # p10 rate, the lightest load (1.0)
    assert estimate.high_s == pytest.approx(5 + 2e10 / 3.2e10 * 2.5)  # p90 rate, the heaviest load (3.0)
    assert "the rate measured for the closest workload, 40.0 GMAC/s (SpineNet-49S, 2026-01-05 10:00 UTC)" == estimate.basis
    assert (estimate.load, estimate.cores, estimate.overloaded) == (2.0, 2, False)


def test_a_loaded_machine_gets_a_longer_estimate_and_a_warning(tmp_path):
    (entry,) = list_results(path=stored(tmp_path, result()))
    rate = measured_rate(entry, macs_per_image=1e9)
    idle = estimate_run(2e11, 10, 2, rate, (0.0, 0.0, 0.0), 2)
    busy = estimate_run(2e11, 10, 2, rate, (6.0, 6.0, 6.0), 2)
    assert idle.seconds == pytest.approx(4 + 50) and busy.seconds == pytest.approx(4 + 50 * 4)
    assert load_warning(idle) is None
    assert load_warning(busy).startswith("This machine is busy: load average 6.0 on 2 CPU cores.")


def test_the_sweeps_busy_line_is_the_latency_tabs():
    assert busy_warning(None, 2) is None and busy_warning(2.0, 2) is None  # unknown, or no more tasks than cores
    assert busy_warning(2.5, 1).startswith("This machine is busy: load average 2.5 on 1 CPU core. ")
    busy = estimate_run(1e9, 1, 1, None, (6.0, 6.0, 6.0), 2)
    assert busy_warning(6.0, 2) == load_warning(busy)


def test_without_a_measurement_the_assumed_rate_with_a_wide_spread():
    estimate = estimate_run(CPU_MACS_PER_SECOND * 10, 1, 1, None, (), 4)
    assert (estimate.seconds, estimate.low_s, estimate.high_s) == pytest.approx((4 + 10, 3 + 2.5, 5 + 20))
    assert estimate.load is None and not estimate.overloaded and "assumed" in estimate.basis


def test_the_latest_cpu_row_of_a_known_spec_in_the_same_precision_gives_the_rate(tmp_path):
    small = load_builtin("spinenet-49s")
    edited = replace(small, name="Mine", input_size=512)  # not a built-in: known only when passed in
    path = stored(tmp_path,
                  result(spec_hash(small), median=50.0, when="01"),
                  result(spec_hash(edited), median=80.0, when="02", label="Mine"),
                  result(spec_hash(small), median=10.0, when="03", device="cuda"),
                  result(spec_hash(small), median=70.0, when="04", precision="bf16"),
                  result("unknown-hash", median=5.0, when="05"))
    assert closest_rate([], "fp32", path=path).label == "SpineNet-49S"  # the edited spec is not known without it
    rate = closest_rate([edited], "fp32", path=path)
    macs = count_model(edited, 64, "none", 1000, "gap").macs("")
    assert rate.label == "Mine" and rate.median == pytest.approx(macs * 2 * 2 / 0.080)
    assert closest_rate([], "fp16", path=path) is None


def test_overloaded_means_more_load_than_cores():
    assert TimeEstimate(1, 1, 1, "", 2.5, 2).overloaded and not TimeEstimate(1, 1, 1, "", 2.0, 2).overloaded


def test_the_rate_of_the_closest_workload_is_taken_not_the_newest(tmp_path):
    """A 64 px run is slower per MAC than a 256 px one (fixed costs per layer): a 256 px estimate must not take the
    rate of a newer 64 px run. Work per pass by hand: 49S's MACs at each size x batch 2."""
    small = load_builtin("spinenet-49s")
    path = stored(tmp_path, result(spec_hash(small), median=40.0, when="01", input_size=256),
                  result(spec_hash(small), median=20.0, when="02", input_size=64))
    at = {size: count_model(small, size, "none", 1000, "gap").macs("") * 2 for size in (64, 256)}
    assert closest_rate([], "fp32", at[256], path=path).label == "SpineNet-49S"
    assert closest_rate([], "fp32", at[256], path=path).median == pytest.approx(at[256] * 2 / 0.040)
    assert closest_rate([], "fp32", at[64] * 1.1, path=path).median == pytest.approx(at[64] * 2 / 0.020)
    assert closest_rate([], "fp32", None, path=path).median == pytest.approx(at[64] * 2 / 0.020)  # the newest
