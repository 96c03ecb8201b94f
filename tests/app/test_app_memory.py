"""The Memory tab through AppTest: weights, gradients and optimizer state against the real torch module's
parameters and buffers; the largest batch that fits the budget is the last one whose estimate fits; memory vs batch
for the open spec and ResNet-50-FPN with the budget line; settings kept across tabs; stored settings that are no
longer valid fall back to the defaults with no error."""
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import spinescope
from spinescope.analysis.memory.estimate import estimate_training_memory
from spinescope.spinenet.builtins import load_builtin

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"
MIB, GIB = 2 ** 20, 2 ** 30


def run(app):
    app.run()
    assert not app.exception, [item.value for item in app.exception]
    assert not app.error, [item.value for item in app.error]
    return app


def memory_tab():
    app = run(AppTest.from_file(str(APP), default_timeout=60))
    app.session_state["tab"] = "Memory"
    return run(app)


def metrics(app):
    return {item.label: item.value for item in app.metric}


def torch_sizes(spec, head):
    """(params, bytes of parameters and buffers) of the real module."""
    model = spinescope.create_model(spec, head, 128)
    params = sum(p.numel() for p in model.parameters())
    data = sum(p.numel() * p.element_size() for p in model.parameters())
    data += sum(b.numel() * b.element_size() for b in model.buffers())
    return params, data, len(list(model.parameters()))


def test_the_split_matches_the_real_module_and_the_fit_is_the_last_batch_that_fits():
    app = memory_tab()
    spec = load_builtin("spinenet-49")
    params, weight_bytes, tensors = torch_sizes(spec, "retinanet")
    shown = metrics(app)
    assert shown["Weights"] == f"{weight_bytes / MIB:,.1f} MiB"
    assert shown["Gradients"] == f"{params * 4 / MIB:,.1f} MiB"  # fp32 gradient per parameter
    assert shown["Optimizer state"] == f"{params * 4 / MIB:,.1f} MiB"  # SGD momentum: one buffer per parameter
    estimate = estimate_training_memory(spec, 640, "retinanet", 8)
    caption = next(item.value.replace("\\", "") for item in app.caption if "transient tensors" in item.value)
    assert f"and includes {estimate.transient_bytes / MIB:,.1f} MiB of transient tensors" in caption
    assert "{" not in caption and "MiB = 2^20 bytes, GiB = 2^30 bytes" in caption
    assert shown["Activations kept"] == f"{estimate.activations_bytes / GIB:,.2f} GiB"  # over 1 GiB: in GiB
    next(item for item in app.selectbox if item.label == "Optimizer").set_value("adamw")
    inputs = {item.label: item for item in app.number_input}
    inputs["Memory budget (GiB)"].set_value(6.0)
    inputs["Input size (px)"].set_value(512)
    run(app)
    shown = metrics(app)
    assert shown["Optimizer state"] == f"{(2 * params * 4 + 4 * tensors) / MIB:,.1f} MiB"  # exp_avg, exp_avg_sq, step
    reference = load_builtin("resnet50-fpn")
    for model, label in ((spec, "SpineNet-49 at 512 px"), (reference, "ResNet-50-FPN at 512 px")):
        batch = int(shown[label].removeprefix("batch ").replace(",", ""))
        peak = lambda b: estimate_training_memory(model, 512, "retinanet", b, "adamw").peak_bytes  # noqa: E731
        assert batch >= 1 and peak(batch) <= 6 * GIB < peak(batch + 1)
    fit = next(frame.value for frame in app.dataframe if "input px" in frame.value)
    assert 512 in list(fit["input px"]) and list(fit["input px"]) == sorted(fit["input px"])
    plot = next(json.loads(item.proto.spec) for item in app.get("plotly_chart")
                if "vs batch" in json.loads(item.proto.spec)["layout"]["title"]["text"])
    names = [trace["name"] for trace in plot["data"]]
    assert names[:2] == ["SpineNet-49", "ResNet-50-FPN"] and names[2] == "budget 6.0 GiB"
    assert plot["data"][2]["y"] == [6.0, 6.0]
    batches = plot["data"][0]["x"]
    assert plot["data"][0]["y"] == pytest.approx(
        [estimate_training_memory(spec, 512, "retinanet", b, "adamw").peak_bytes / GIB for b in batches])
    blocks = next(frame.value for frame in app.dataframe if "activations MiB" in frame.value)
    assert blocks["share %"].sum() == pytest.approx(100.0)

    app.session_state["tab"] = "Explore"  # the settings survive another tab
    run(app)
    app.session_state["tab"] = "Memory"
    run(app)
    inputs = {item.label: item for item in app.number_input}
    assert inputs["Memory budget (GiB)"].value == 6.0 and inputs["Input size (px)"].value == 512
    assert next(item for item in app.selectbox if item.label == "Optimizer").value == "adamw"


def test_stored_settings_that_are_no_longer_valid_fall_back_to_the_defaults():
    from spinescope.app import memory_tab as tab

    assert tab._valid("memory_budget_gib", "abc") is None and tab._valid("memory_budget_gib", float("nan")) is None
    assert tab._valid("memory_size", 10 ** 9) is None and tab._valid("memory_batch", True) is None
    assert tab._valid("memory_optimizer", "lamb") is None and tab._valid("memory_budget_gib", 12) == 12.0


def test_a_height_by_width_estimate():
    """The Memory tab's height field: the split and the fit row are those of the (height, width) input."""
    from spinescope.analysis.memory.estimate import estimate_training_memory
    from spinescope.app.memory_tab import size_text
    from spinescope.spinenet.builtins import load_builtin

    app = memory_tab()
    next(item for item in app.number_input if item.label == "Input size (px)").set_value(320)
    next(item for item in app.number_input if item.label == "Height (empty: square)").set_value(192)
    run(app)
    assert not app.error
    expected = estimate_training_memory(load_builtin("spinenet-49"), (192, 320), "retinanet", batch=8)
    metrics = {item.label: item.value for item in app.metric}
    assert metrics["Activations kept"] == size_text(expected.activations_bytes)
    fit = next(frame.value for frame in app.dataframe if "input px" in frame.value)
    assert "320x192" in list(fit["input px"])
