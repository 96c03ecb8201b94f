"""The Latency tab through AppTest with real worker processes: progress until done, results and history tables,
a refused run reported in one line with the app still working, and cancel."""
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from spinescope.analysis.latency.history import list_results
from spinescope.analysis.latency.request import cuda_available
from app_runs import run

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


def latency_tab() -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=60)
    run(app)
    app.session_state["tab"] = "Latency"
    return run(app)


def configure(app, models, size, iters, warmup=0, batch=1, head="none", device="auto"):
    inputs = {item.label: item for item in app.number_input}
    inputs["Input size (px)"].set_value(size)
    inputs["Timed iterations"].set_value(iters)
    inputs["Warm-up iterations"].set_value(warmup)
    inputs["Batch"].set_value(batch)
    next(item for item in app.selectbox if item.label == "Head").set_value(head)
    next(item for item in app.selectbox if item.label == "Device").set_value(device)
    next(item for item in app.multiselect if item.label.startswith("Models")).set_value(models)
    run(app)


def start(app):
    next(item for item in app.button if item.label == "Measure latency").click()
    return run(app)


def measuring(app) -> bool:
    """True while the page shows a running measurement (its progress bar and Cancel button)."""
    return any(item.label == "Cancel" for item in app.button)


def wait(app, limit=120):
    started = time.monotonic()
    while measuring(app) and time.monotonic() - started < limit:
        time.sleep(0.5)
        run(app)
    assert not measuring(app), "the latency job did not finish in time"


def test_device_is_stated_and_a_run_fills_results_and_history(home):
    app = latency_tab()
    if cuda_available():  # the device is named plainly either way
        assert any(item.value.startswith("**Device:** GPU: ") for item in app.markdown)
    else:
        assert any(item.value.startswith("**Device:** CPU") and "no GPU found" in item.value
                   for item in app.markdown)
    configure(app, ["current spec", "spinenet-49s"], size=64, iters=3)
    start(app)
    assert app.get("progress"), "a progress bar shows while the job runs"
    assert any(item.label == "Cancel" for item in app.button)
    wait(app)
    assert not app.error
    results = app.dataframe[0].value
    assert list(results["model"]) == ["SpineNet-49 (current)", "SpineNet-49S"]
    assert (results["median ms"] > 0).all() and (results["p10 ms"] <= results["p90 ms"]).all()
    assert results["ratio to first"].iloc[0] == pytest.approx(1.0)
    assert set(results["input px"]) == {64}
    stored = list_results(path=home / "history.sqlite")
    assert {entry.label for entry in stored} == {"SpineNet-49 (current)", "SpineNet-49S"}
    assert len(app.dataframe[1].value) == 2  # the history table


def test_a_refused_run_is_one_line_and_the_app_keeps_working(home):
    app = latency_tab()
    # On the CPU, so that the refusal comes from the memory estimate before the run on any machine (a GPU's own
    # check happens inside the worker and words its refusal differently).
    configure(app, ["spinenet-190"], size=2048, iters=1, batch=256, head="retinanet", device="cpu")
    start(app)
    wait(app, limit=60)
    errors = [re.sub(r"\\(.)", r"\1", item.value) for item in app.error]  # as read, without Markdown escapes
    assert len(errors) == 1 and errors[0].startswith("Latency run failed: refused: the run needs about ")
    assert "\n" not in errors[0]
    app.session_state["tab"] = "Explore"
    run(app)
    assert len(app.metric) == 6


def test_cancel_stops_the_run(home):
    app = latency_tab()
    configure(app, ["current spec"], size=128, iters=1000)
    start(app)
    next(item for item in app.button if item.label == "Cancel").click()
    run(app)
    wait(app, limit=60)
    assert [item.value for item in app.info] == ["Cancelled\\."]
    assert list_results(path=home / "history.sqlite") == []


def test_a_height_by_width_run(home):
    """The Latency tab's height field: the run times a (1, 3, 64, 96) input and says 96x64 wherever it shows it."""
    app = latency_tab()
    configure(app, ["spinenet-mobile-49xs"], size=96, iters=2)
    next(item for item in app.number_input if item.label == "Height (empty: square)").set_value(64)
    run(app)
    start(app)
    wait(app)
    assert not app.error
    assert list(app.dataframe[0].value["input px"]) == ["96x64"]
    assert [entry.input_size for entry in list_results(path=home / "history.sqlite")] == ["96x64"]
