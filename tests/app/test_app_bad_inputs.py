"""Every file of the bad-input corpus uploaded through the app: a one-line error naming the problem, no exception,
and the current (edited) spec unchanged."""
from __future__ import annotations

import json
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from spinescope.spinenet.builtins import load_builtin

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "bad"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


def labelled(widgets, label):
    return next(item for item in widgets if item.label == label)


def test_every_corpus_file_is_refused_with_its_message_and_the_edited_spec_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path / "home"))
    app = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60)
    app.run()
    app.session_state["tab"] = "Edit"
    app.run()
    labelled(app.selectbox, "Block to edit").set_value("b7")
    app.run()
    labelled(app.selectbox, "Level").set_value(6)
    app.run()
    edited = app.session_state["history"].current
    assert edited.block("b7").level == 6 and edited != load_builtin("spinenet-49")
    app.session_state["tab"] = "Import / export"
    app.run()
    for name in sorted(EXPECTED):
        app.file_uploader[0].upload(name, (CORPUS / name).read_bytes(), "application/octet-stream")
        app.run()
        assert not app.exception, (name, [item.value for item in app.exception])
        shown = [re.sub(r"\\(.)", r"\1", item.value) for item in app.error]
        assert len(shown) == 1 and "\n" not in shown[0], (name, shown)
        assert shown[0].startswith(f"Import failed ({name}): ") and EXPECTED[name] in shown[0], (name, shown)
        assert app.session_state["history"].current == edited, name
