"""Heavy work is sized before it starts: an ONNX export, a graph image, an fvcore trace and a training-step
measurement over SPINESCOPE_MAX_MEMORY_MIB or SPINESCOPE_MAX_SECONDS are refused with one line naming the estimate
and the limit, and a small one under the same limit still runs for real. The weights in each message are compared
with the model's own tensors, counted on the `meta` device by the test."""
from __future__ import annotations

import re
from pathlib import Path

import onnx
import pytest
from streamlit.testing.v1 import AppTest

from spinescope.analysis.counting import analyze
from spinescope.analysis.limits import ResourceLimitError, byte_text
from spinescope.analysis.memory.measure import measure_in_subprocess
from spinescope.app.exports import ExportError, graph_image, onnx_bytes
from spinescope.spinenet.build import build_model
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.spec import spec_to_dict
from spinescope.spinenet.validate import parse_spec

ROOT = Path(__file__).resolve().parents[2]


def model_weight_bytes(spec, head: str, size: int) -> int:
    """The bytes of the parameters and buffers of the model built on the meta device (no real memory)."""
    model = build_model(spec, head, size, device="meta")
    return sum(tensor.numel() * tensor.element_size() for tensor in [*model.parameters(), *model.buffers()])


def giant_spec():
    """SpineNet-190 at the widest scaling that validates, with the widest RetinaNet: 12.5 GiB of weights."""
    data = spec_to_dict(load_builtin("spinenet-190"))
    data["name"] = "Giant"
    data["scaling"].update(filter_size_scale=4.0, block_repeats=8, endpoints_num_filters=2048)
    data["head"].update(width=2048, num_convs=16)
    return parse_spec(data)


def one_line(text: str) -> str:
    assert "\n" not in text and "Traceback" not in text
    return text


def test_an_onnx_export_over_the_memory_limit_is_refused_before_building_and_a_small_one_exports(monkeypatch):
    monkeypatch.setenv("SPINESCOPE_MAX_MEMORY_MIB", "900")
    spinenet_49 = load_builtin("spinenet-49")
    weights = byte_text(model_weight_bytes(spinenet_49, "retinanet", 256))
    with pytest.raises(ExportError) as refused:
        onnx_bytes(spinenet_49, "retinanet", 256)
    message = one_line(str(refused.value))
    assert message.startswith("refused: an ONNX export of SpineNet-49 at 256 px needs about ")
    assert "more than the 900 MiB available (SPINESCOPE_MAX_MEMORY_MIB)" in message
    assert f"6 x {weights} of weights" in message and "before any activation" in message

    mobile = load_builtin("spinenet-mobile-49")
    exported = onnx.load_from_string(onnx_bytes(mobile, "none", 128))
    assert [output.name for output in exported.graph.output] == ["P3", "P4", "P5", "P6", "P7"]


def test_an_onnx_file_over_2_gib_is_refused_whatever_the_memory(monkeypatch):
    monkeypatch.delenv("SPINESCOPE_MAX_MEMORY_MIB", raising=False)
    giant = giant_spec()
    weights = model_weight_bytes(giant, "retinanet", 640)
    assert weights > 2**31
    with pytest.raises(ExportError) as refused:
        onnx_bytes(giant, "retinanet", 640)
    assert one_line(str(refused.value)) == (
        f"refused: an ONNX file of Giant with the retinanet head would hold {byte_text(weights)} of weights, over "
        "the 2 GiB an ONNX file can hold; choose a smaller model")


def test_an_onnx_export_over_the_time_limit_is_refused(monkeypatch):
    monkeypatch.setenv("SPINESCOPE_MAX_SECONDS", "60")
    with pytest.raises(ExportError, match=r"^refused: an ONNX export of SpineNet-190 at 1280 px \([\d,]+B MACs\) "
                                          r"would take about [\d,]+ s, over the 60 s limit \(SPINESCOPE_MAX_SECONDS\)"):
        onnx_bytes(load_builtin("spinenet-190"), "none", 1280)


def test_the_app_says_why_it_does_not_build_an_onnx_model_and_keeps_the_page(monkeypatch):
    monkeypatch.setenv("SPINESCOPE_MAX_MEMORY_MIB", "900")
    app = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
    app.run()
    app.session_state["tab"] = "Import / export"
    app.run()
    next(button for button in app.button if button.key == "render_onnx").click()
    app.run()
    assert not app.exception
    shown = [re.sub(r"\\(.)", r"\1", item.value) for item in app.error]
    assert len(shown) == 1 and one_line(shown[0]).startswith("refused: an ONNX export of SpineNet-49 at 640 px")
    assert "(SPINESCOPE_MAX_MEMORY_MIB)" in shown[0]
    assert any(button.key == "render_onnx" for button in app.button)  # still offered; nothing else lost


def test_an_fvcore_trace_whose_weights_alone_do_not_fit_is_refused_before_any_activation(monkeypatch):
    monkeypatch.setenv("SPINESCOPE_MAX_MEMORY_MIB", "4096")
    giant = giant_spec()
    weights = byte_text(model_weight_bytes(giant, "none", 256))
    with pytest.raises(ResourceLimitError) as refused:
        analyze(giant, 256, counter="fvcore")
    assert one_line(str(refused.value)) == (
        f"refused: an fvcore trace of Giant at 256 px needs about {weights}, more than the 4.0 GiB available "
        f"(SPINESCOPE_MAX_MEMORY_MIB): 1 x {weights} of weights, before any activation; use the fast counter or a "
        "smaller input size")


def test_a_graph_image_over_the_limits_is_refused_and_one_under_them_is_rendered(monkeypatch):
    spec = load_builtin("spinenet-49s")
    monkeypatch.setenv("SPINESCOPE_MAX_MEMORY_MIB", "256")
    with pytest.raises(ExportError, match=r"^refused: a 1400 x 640 px graph image needs about [\d,]+ MiB \(headless "
                                          r"Chromium\), more than the 256 MiB available \(SPINESCOPE_MAX_MEMORY_MIB\)"):
        graph_image(spec, 640, "png")
    monkeypatch.setenv("SPINESCOPE_MAX_MEMORY_MIB", "4096")
    monkeypatch.setenv("SPINESCOPE_MAX_SECONDS", "5")
    with pytest.raises(ExportError, match=r"^refused: a graph image takes about \d+ s in headless Chromium, over the "
                                          r"5 s limit \(SPINESCOPE_MAX_SECONDS\)"):
        graph_image(spec, 640, "svg")
    monkeypatch.delenv("SPINESCOPE_MAX_SECONDS")
    assert graph_image(spec, 640, "png").startswith(b"\x89PNG\r\n\x1a\n")


def test_a_training_step_measurement_over_the_memory_limit_is_refused_before_its_process_starts(monkeypatch):
    monkeypatch.setenv("SPINESCOPE_MAX_MEMORY_MIB", "1024")
    with pytest.raises(ResourceLimitError, match=r"^refused: a training-step measurement of SpineNet-49 at 640 px "
                                                 r"needs about [\d.,]+ GiB, more than the 1.0 GiB available "
                                                 r"\(SPINESCOPE_MAX_MEMORY_MIB\)"):
        measure_in_subprocess(spec="spinenet-49", input_size=640, batch=8)
    measured = measure_in_subprocess(spec="spinenet-49s", input_size=64, batch=2)
    assert measured["weights_bytes"] == model_weight_bytes(load_builtin("spinenet-49s"), "none", 64)
