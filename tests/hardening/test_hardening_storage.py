"""Environment and storage: a bad SPINESCOPE_MAX_MEMORY_MIB, a SPINESCOPE_HOME that cannot be created or written, a
workspace file deleted, truncated or corrupted while the app runs: one line naming the file and the fix, and the app
recovers. Other people's data: the sidebar lists only this browser's workspaces; user text reaches Markdown
escaped (tooltips too); CSV cells cannot start a formula."""
from __future__ import annotations

import json
import re
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from spinescope.analysis.limits import ResourceLimitError, max_memory_bytes, max_seconds
from spinescope.analysis.paths import DataDirError, data_dir
from spinescope.app.workspace import StorageRecovered, WorkspaceError, WorkspaceStore
from spinescope.app.exports import csv_cell, table_csv
from spinescope.app.markup import escape_md
from spinescope.spinenet.builtins import load_builtin

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")
SPEC = load_builtin("spinenet-49")


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity", "1e999", "0", "-5", "lots", "\x1b[31m"])
def test_bad_memory_and_time_limits_are_one_line(monkeypatch, value):
    monkeypatch.setenv("SPINESCOPE_MAX_MEMORY_MIB", value)
    with pytest.raises(ResourceLimitError) as info:
        max_memory_bytes()
    message = str(info.value)
    assert message.startswith("SPINESCOPE_MAX_MEMORY_MIB=") and "unset it for the default" in message
    assert message.isprintable() and message.isascii()
    monkeypatch.setenv("SPINESCOPE_MAX_SECONDS", value)
    with pytest.raises(ResourceLimitError):
        max_seconds()


def test_cli_with_infinite_memory_limit_is_one_line(tmp_path):
    env = dict(os.environ, SPINESCOPE_MAX_MEMORY_MIB="inf", SPINESCOPE_HOME=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "spinescope", "analyze", "spinenet-49s", "--counter", "fvcore",
                             "--input-size", "64"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: SPINESCOPE_MAX_MEMORY_MIB='inf' must be a positive finite number; set one (e.g. "
        "SPINESCOPE_MAX_MEMORY_MIB=4096) or unset it for the default"]


@pytest.mark.parametrize("kind", ["a file", "below a file"])
def test_home_that_cannot_be_created_is_one_line(tmp_path, monkeypatch, kind):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    home = blocker if kind == "a file" else blocker / "sub"
    monkeypatch.setenv("SPINESCOPE_HOME", str(home))
    with pytest.raises(DataDirError) as info:
        data_dir()
    assert str(info.value).startswith(f"cannot use SPINESCOPE_HOME={home} (")
    assert str(info.value).endswith("; set SPINESCOPE_HOME to a writable directory")
    env = dict(os.environ, SPINESCOPE_HOME=str(home))
    result = subprocess.run([sys.executable, "-m", "spinescope", "history"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [f"error: {info.value}"]


def test_app_with_unusable_home_works_in_a_temporary_folder_and_says_so(tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SPINESCOPE_HOME", str(blocker / "sub"))
    app = AppTest.from_file(MAIN, default_timeout=60)
    app.run()
    assert not app.exception
    warnings = [w.value for w in app.warning]
    assert any("cannot use SPINESCOPE\\_HOME=" in w and "writable directory" in w for w in warnings), warnings
    assert app.session_state["history"].current == SPEC


def _store(tmp_path) -> tuple[WorkspaceStore, str]:
    store = WorkspaceStore(tmp_path / "workspace.sqlite")
    workspace = store.create(SPEC, "open")
    store.save_design("kept", SPEC)
    return store, workspace


def _damage(path: Path, how: str) -> None:
    if how == "deleted":
        path.unlink()
    elif how == "emptied":
        path.write_bytes(b"")
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[:4096])
    elif how == "corrupted":
        path.write_bytes(b"garbage " * 2000)
    elif how == "tables dropped":
        with sqlite3.connect(path) as connection:
            connection.executescript("DROP TABLE history; DROP TABLE designs; DROP TABLE workspaces;")


@pytest.mark.parametrize("how", ["deleted", "emptied", "truncated", "corrupted", "tables dropped"])
def test_damaged_workspace_file_is_replaced_with_one_line(tmp_path, how):
    store, workspace = _store(tmp_path)
    (tmp_path / "history.sqlite").write_text("another file: untouched")
    _damage(store.path, how)
    with pytest.raises(StorageRecovered) as info:
        store.load(workspace)
    message = str(info.value)
    assert "\n" not in message and str(store.path) in message
    assert {"deleted": "was deleted or emptied", "emptied": "was deleted or emptied", "truncated": "was damaged",
            "corrupted": "was damaged", "tables dropped": "had lost its tables"}[how] in message
    if how in ("truncated", "corrupted"):
        kept = next(tmp_path.glob("workspace.sqlite.damaged-*"))
        assert str(kept) in message and kept.stat().st_size > 0
    fresh = store.create(SPEC, "open")  # the store works again
    assert store.load(fresh).current == SPEC
    assert (tmp_path / "history.sqlite").read_text() == "another file: untouched"


def test_app_recovers_when_the_workspace_file_is_corrupted_while_it_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    app = AppTest.from_file(MAIN, default_timeout=60)
    app.run()
    first = app.session_state["workspace_id"]
    _damage(tmp_path / "workspace.sqlite", "corrupted")
    app.run()
    assert not app.exception
    warnings = [w.value for w in app.warning]
    assert any(w.startswith("Started a new workspace: ") and "was damaged" in w for w in warnings), warnings
    assert app.session_state["workspace_id"] != first and app.session_state["history"].current == SPEC
    app.run()
    assert not app.exception and not app.warning


def test_app_recovers_when_the_workspace_file_is_deleted(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    app = AppTest.from_file(MAIN, default_timeout=60)
    app.run()
    (tmp_path / "workspace.sqlite").unlink()
    app.run()
    assert not app.exception
    assert any("deleted or emptied" in w.value for w in app.warning), [w.value for w in app.warning]


def _stored_with_bad_name(path: Path) -> str:
    """A workspace saved by an older version whose spec name is a lone surrogate and a Markdown image."""
    store = WorkspaceStore(path)
    workspace = store.create(SPEC, "open")
    data = json.loads(json.dumps({"name": "x"}))
    with sqlite3.connect(path) as connection:
        text = connection.execute("SELECT spec FROM history WHERE workspace = ?", (workspace,)).fetchone()[0]
        spec = json.loads(text)
        spec["name"] = "![x](http://example.invalid/p.png)\ud800"
        connection.execute("UPDATE history SET spec = ? WHERE workspace = ?", (json.dumps(spec), workspace))
    del data
    return workspace


def test_a_stored_bad_name_takes_down_neither_its_workspace_nor_other_pages(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    bad = _stored_with_bad_name(tmp_path / "workspace.sqlite")
    other = AppTest.from_file(MAIN, default_timeout=60)
    other.run()
    assert not other.exception and not other.error
    owner = AppTest.from_file(MAIN, default_timeout=60)
    owner.query_params["ws"] = bad
    owner.run()
    assert not owner.exception
    assert any(w.value.startswith("Started a new workspace: ") and "\\\\ud800" in w.value for w in owner.warning)


def test_sidebar_lists_only_this_browsers_workspaces(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    mine = AppTest.from_file(MAIN, default_timeout=60)
    mine.run()
    theirs = AppTest.from_file(MAIN, default_timeout=60)
    theirs.run()
    their_id = theirs.session_state["workspace_id"]
    my_id = mine.session_state["workspace_id"]
    mine.run()
    links = " ".join(m.value for m in mine.markdown)
    assert f"?ws={my_id}" in links and their_id not in links
    store = WorkspaceStore(tmp_path / "workspace.sqlite")
    assert [info.id for info in store.recent(10, owner=mine.session_state["browser_id"])] == [my_id]


def test_a_design_name_reaches_another_sessions_undo_tooltip_escaped(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    evil = "![x](http://example.invalid/p.png) <img src=x>"
    # A shared design (saved without an owner, as an older version did): another browser's own designs are not
    # listed here at all (tests/app/test_designs_owner.py).
    WorkspaceStore(tmp_path / "workspace.sqlite").save_design(evil, SPEC)
    victim = AppTest.from_file(MAIN, default_timeout=60)
    victim.run()
    victim.selectbox(key="design_choice").set_value(evil)
    victim.button(key="open_design").click()
    victim.run()
    assert not victim.exception
    help_text = victim.button(key="undo").help
    assert help_text == f"Undo: {escape_md('open design ' + evil)}"
    assert re.search(r"(?<!\\)[!<\[(]", help_text) is None, help_text  # every special character escaped


def test_design_names_that_cannot_be_printed_are_refused(tmp_path):
    store = WorkspaceStore(tmp_path / "w.sqlite")
    for name in ["a\nb", "\x1b[31m", "x\ud800", "\u202e"]:
        with pytest.raises(WorkspaceError, match="cannot be printed"):
            store.save_design(name, SPEC)


def test_escape_md_is_one_line_and_literal():
    assert escape_md("a\nb![i](u)") == "a\\\\nb\\!\\[i\\]\\(u\\)"
    assert escape_md("x\ud800").encode("utf-8")


def test_csv_cells_cannot_start_a_formula():
    frame = pd.DataFrame({"name": ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "ok", "\t=1"],
                          "=col": [1, 2, 3, 4, 5, 6]})
    text = table_csv(frame).decode()
    lines = text.splitlines()
    assert lines[0] == "'=col,name" or lines[0].startswith("name,'=col")
    for line in lines[1:]:
        assert not line.startswith(("=", "+", "-", "@", "\t", '"=')), line
    assert csv_cell(-2) == -2 and csv_cell("ok") == "ok" and csv_cell("-x") == "'-x"
