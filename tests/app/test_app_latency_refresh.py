"""The Latency tab after a refresh (a new session on the same workspace, `ws`), with a real worker process: a
running measurement is followed there, and its "This run" panel (table and plot) is shown again after a further
refresh, read back from the history; and the time estimate before a run comes from the last measured rate."""
import os
import re
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from spinescope.analysis.counting.fast import count_model
from spinescope.analysis.latency.history import list_results, save_results
from spinescope.analysis.latency.results import LatencyResult
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.spec import spec_hash
from app_runs import run

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


def start(query=None) -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.query_params.update(query or {})
    run(app)
    app.session_state["tab"] = "Latency"
    return run(app)


def measuring(app) -> bool:
    return any(item.label == "Cancel" for item in app.button)


def this_run(app):
    """The 'This run' table (None when the panel is not shown)."""
    if not any(item.value == "##### This run" for item in app.markdown):
        return None
    return next(frame.value for frame in app.dataframe if "ratio to first" in frame.value)


def test_a_finished_run_survives_a_refresh(home):
    app = start()
    inputs = {item.label: item for item in app.number_input}
    for label, value in (("Input size (px)", 64), ("Timed iterations", 30), ("Warm-up iterations", 0)):
        inputs[label].set_value(value)
    next(item for item in app.selectbox if item.label == "Head").set_value("none")
    next(item for item in app.selectbox if item.label == "Device").set_value("cpu")
    next(item for item in app.multiselect if item.label.startswith("Models")).set_value(
        ["spinenet-mobile-49xs", "spinenet-49s"])
    run(app)
    next(item for item in app.button if item.label == "Measure latency").click()
    run(app)
    workspace = app.query_params["ws"]
    refreshed = start({"ws": workspace})  # a refresh while the worker runs: the new page follows the run
    assert measuring(refreshed) and this_run(refreshed) is None
    started = time.monotonic()
    while measuring(refreshed) and time.monotonic() - started < 180:
        time.sleep(0.5)
        run(refreshed)
    assert not measuring(refreshed) and not refreshed.error
    stored = list_results(path=home / "history.sqlite")  # newest first
    shown = this_run(refreshed)
    assert list(shown["model"]) == [load_builtin(name).name for name in ("spinenet-mobile-49xs", "spinenet-49s")]
    assert list(shown["median ms"]) == [entry.median_ms for entry in reversed(stored)]
    again = start({"ws": workspace})  # a refresh after the run: the panel is read back from the history
    assert not again.error
    restored = this_run(again)
    assert restored is not None and restored.equals(shown)
    assert any(item.proto.spec and "Median latency per forward pass" in item.proto.spec
               for item in again.get("plotly_chart"))


def test_the_cpu_estimate_comes_from_the_last_measured_rate(home):
    spec = load_builtin("spinenet-49")
    macs = count_model(spec, 640, "retinanet", 1000, "gap").macs("")
    stored, warning = save_results([LatencyResult(  # made up: SpineNet-49 + RetinaNet at 640 px in 2 s, 1 thread
        label="SpineNet-49", spec_name="SpineNet-49", spec_hash=spec_hash(spec), input_size=640, head="retinanet",
        batch=1, device="cpu", device_name="Test CPU", precision="fp32", dtype="float32", memory_format="contiguous",
        fold_bn=False, compiled=False, threads=1, iterations=3, warmup=1, median_ms=2000.0, p10_ms=1800.0,
        p90_ms=2500.0, mean_ms=2000.0, min_ms=1800.0, throughput=0.5, peak_memory_bytes=1, weight_bytes=1,
        activation_bytes=0, estimated_memory_bytes=1, build_s=0.1, compile_s=None, bn_folded=0, bn_remaining=1,
        ratio_to_first=1.0, torch_version="2.0.0+cpu",
        environment={"cores": os.cpu_count(), "load_average": 0.0}, run_id="run-1",
        created_at="2026-01-05T10:00:00+00:00", samples_ms=[2000.0])], home / "history.sqlite")
    assert warning is None
    app = start()
    next(item for item in app.selectbox if item.label == "Device").set_value("cpu")
    run(app)
    line = next(re.sub(r"\\(.)", r"\1", item.value) for item in app.markdown if "Estimated time" in item.value)
    rate = macs / 2.0  # MAC/s: one image in 2 s, measured on an idle machine with 1 thread
    assert (f"from the rate measured for the closest workload, {rate / 1e9:,.1f} GMAC/s (SpineNet-49, "
            "2026-01-05 10:00 UTC)" in line), line
    assert re.search(r"about [0-9.,]+ (s|min) \([0-9.,]+ (s|min) to [0-9.,]+ (s|min)\) for 2 models × 24 passes",
                     line), line
