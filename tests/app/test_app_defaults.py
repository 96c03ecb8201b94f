"""One source of defaults (issue 24): the Latency and Memory tabs start from the sidebar's input size and head and
follow it until the user sets their own; the Memory tab's device names no optimizer; the `memory` command without
options gives the figures the Memory tab shows without options."""
import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from spinescope.analysis.cli import main
from spinescope.spinenet.builtins import load_builtin
from app_runs import run

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


def open_tab(app, tab):
    app.session_state["tab"] = tab
    return run(app)


def number(app, label, where="main"):
    return next(item for item in getattr(app, where).number_input if item.label == label)


def select(app, label, where="main"):
    return next(item for item in getattr(app, where).selectbox if item.label == label)


def form(app, tab):
    """The (input size, height, head) a tab's form shows."""
    open_tab(app, tab)
    return number(app, "Input size (px)").value, number(app, "Height (empty: square)").value, select(app, "Head").value


def test_the_tabs_start_from_the_sidebars_choices_and_follow_them_until_set():
    app = run(AppTest.from_file(str(APP), default_timeout=60))
    side = load_builtin("spinenet-49").input_size  # the open spec's own size, which the sidebar starts from
    assert number(app, "Input size (pixels)", "sidebar").value == side
    head = select(app, "Head (for 'backbone + head')", "sidebar").value
    assert head == "retinanet"
    assert form(app, "Latency") == (side, None, head)
    assert form(app, "Memory") == (side, None, head)
    # A sidebar change is followed by the fields never set in a tab.
    number(app, "Input size (pixels)", "sidebar").set_value(384)
    number(app, "Height (empty: square)", "sidebar").set_value(256)
    select(app, "Head (for 'backbone + head')", "sidebar").set_value("classification")
    run(app)
    assert form(app, "Latency") == (384, 256, "classification")
    assert form(app, "Memory") == (384, 256, "classification")
    # A value set in the tab stays when the sidebar changes again; the others still follow.
    open_tab(app, "Latency")
    number(app, "Input size (px)").set_value(256)
    run(app)
    number(app, "Input size (pixels)", "sidebar").set_value(512)
    run(app)
    assert form(app, "Latency") == (256, 256, "classification")
    assert form(app, "Memory") == (512, 256, "classification")


def test_the_memory_tabs_device_names_no_optimizer():
    app = open_tab(run(AppTest.from_file(str(APP), default_timeout=60)), "Memory")
    assert select(app, "Optimizer").value == "sgd"
    assert list(select(app, "Training on").options) == ["GPU", "CPU"]
    caption = next(item.value.replace("\\", "") for item in app.caption if "transient tensors" in item.value)
    assert "AdamW" not in caption
    select(app, "Optimizer").set_value("adamw")
    run(app)
    caption = next(item.value.replace("\\", "") for item in app.caption if "transient tensors" in item.value)
    assert "AdamW (foreach step on the GPU)" in caption


def test_the_memory_command_without_options_agrees_with_the_memory_tab(capsys):
    assert main(["memory", "spinenet-49", "--fit", "16GiB", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    app = open_tab(run(AppTest.from_file(str(APP), default_timeout=60)), "Memory")
    assert (data["head"], data["batch"], data["optimizer"], data["precision"], data["device"]) == (
        select(app, "Head").value, number(app, "Batch").value, select(app, "Optimizer").value,
        select(app, "Precision").value, select(app, "Training on").value)
    assert number(app, "Memory budget (GiB)").value == 16.0
    shown = {item.label: item.value for item in app.metric}
    assert shown["SpineNet-49 at 640 px"] == f"batch {data['max_batch']}"
    assert data["max_batch"] == 16  # README's "--fit 16GiB answers batch 16 at 640" for SpineNet-49 + RetinaNet
    peak = next(item.value for item in app.metric if item.label == "Peak (one training step)")
    assert peak == f"{data['peak_bytes'] / 2 ** 30:,.2f} GiB"
