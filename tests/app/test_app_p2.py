"""min_level 2 (P2) in the app, through AppTest (the real script, a real workspace in a temporary SPINESCOPE_HOME):
the tuple import's output levels, the editor's lowest output level with undo, and the one-line refusal."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from p2_specs import MODEL_GARDEN_TEXT, model_garden_spec
from spinenet.formats import import_tuples
from spinenet.builtins import load_builtin

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path / "home"))


def run(app: AppTest) -> AppTest:
    app.run()
    assert not app.exception, [item.value for item in app.exception]
    return app


def open_tab(app: AppTest, label: str) -> AppTest:
    app.session_state["tab"] = label
    return run(app)


def plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def selectbox(app: AppTest, label: str):
    return next(item for item in app.selectbox if item.label.startswith(label))


def test_tuple_import_with_min_level_2_then_edit_the_lowest_output_level_with_undo():
    app = open_tab(run(AppTest.from_file(str(APP), default_timeout=60)), "Import / export")
    selectbox(app, "Scaling for a bare tuple list").set_value("spinenet-49")
    selectbox(app, "Output levels for a bare tuple list").set_value(2)
    run(app)
    app.text_area[0].set_value(MODEL_GARDEN_TEXT)
    run(app)
    next(item for item in app.button if item.label == "Import pasted text").click()
    run(app)
    assert not app.error
    spec = app.session_state["history"].current
    assert spec == import_tuples(MODEL_GARDEN_TEXT, load_builtin("spinenet-49"), min_level=2).spec
    assert (spec.min_level, spec.blocks[-1].is_output) == (2, True)
    assert "outputs P2-P7" in plain(app.success[0].value)

    app = open_tab(app, "Edit")
    level = selectbox(app, "Lowest output level")
    assert level.value == "2"
    level.set_value("3")
    run(app)
    raised = app.session_state["history"].current
    assert (raised.min_level, raised.blocks[-1].is_output) == (3, False)
    assert "b17 kept without an endpoint" in plain(app.info[0].value)
    assert selectbox(app, "Lowest output level").value == "3"
    # Plain "min level 2" now has no P2 block: refused in one line, the spec stays.
    selectbox(app, "Lowest output level").set_value("2")
    run(app)
    [error] = [plain(item.value) for item in app.error]
    assert error == ("Edit rejected: min level 2: no output block at level 2 (P2); choose one of the level-2 "
                     "blocks (b2, b17) as P2")
    assert app.session_state["history"].current == raised and selectbox(app, "Lowest output level").value == "3"
    selectbox(app, "Lowest output level").set_value("2:b17")
    run(app)
    assert app.session_state["history"].current == replace(model_garden_spec(2), name=spec.name)
    next(item for item in app.button if item.key == "undo").click()
    run(app)
    assert app.session_state["history"].current == raised
    assert selectbox(app, "Lowest output level").value == "3"
