"""The sidebar shows the classifier's input length at the chosen input size and at a second one (AppTest: the real
script, a real workspace in a temporary SPINESCOPE_HOME); the numbers are the hand formula C x sum(n^2) and
ceil(S / 8) for the pooled P3 map of SpineNet-49."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path / "home"))


def run(app: AppTest) -> AppTest:
    app.run()
    assert not app.exception, [item.value for item in app.exception]
    return app


def captions(app: AppTest) -> list[str]:
    return [re.sub(r"\\(.)", r"\1", item.value) for item in app.sidebar.caption]


def test_spp_length_is_shown_at_two_sizes_and_follows_the_choices():
    app = run(AppTest.from_file(str(APP), default_timeout=60))
    assert not [item for item in app.sidebar.selectbox if item.label == "Classifier pooling"]  # RetinaNet: none
    app.sidebar.selectbox(key="head").set_value("classification")
    run(app)
    app.sidebar.number_input(key="input_size").set_value(224)
    app.sidebar.selectbox(key="pooling").set_value("spp")
    run(app)
    assert any(line.startswith(f"SPP {{4,2,1}}: 256 x {16 + 4 + 1} = {256 * 21:,} inputs at 224 px (28x28 map) and "
                               "at 640 px (80x80 map)") for line in captions(app)), captions(app)
    app.sidebar.number_input(key="input_size").set_value(320)
    app.sidebar.selectbox(key="pooling").set_value("spp:6,3,2,1")
    run(app)
    side = math.ceil(320 / 8)
    assert any(line.startswith(f"SPP {{6,3,2,1}}: 256 x 50 = {256 * 50:,} inputs at 320 px ({side}x{side} map) and "
                               "at 224 px (28x28 map)") for line in captions(app)), captions(app)
    assert app.session_state["settings"]["pooling"] == "spp:6,3,2,1"  # kept in the workspace
