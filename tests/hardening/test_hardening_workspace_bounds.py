"""Workspace bounds, on real SQLite files: every stored setting is bounded (a forged 20 MB selection is refused with
one line and never stored; one stored by an older version is dropped when read), and the file keeps at most
SPINESCOPE_MAX_WORKSPACES workspaces and SPINESCOPE_MAX_WORKSPACE_MIB of stored text, the least recently used
ones that no open page holds removed first; bad limits are one line naming the value."""
from __future__ import annotations

import json
import sqlite3

import pytest
from streamlit.testing.v1 import AppTest

from spinescope.app.workspace import (MAX_SETTING_BYTES, WorkspaceError, WorkspaceStore, workspace_limits)
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import set_level

SPEC = load_builtin("spinenet-49")
FORGED = "b" * 20_000_000


def forged_selection_page():
    """A page that binds its workspace and selects what a forged graph-component value would carry."""
    import streamlit as st

    from spinescope.app import session

    session.start()
    session.select_block("b" * 20_000_000)
    session.show_notes("global")
    st.write(st.session_state.workspace_id)


def test_a_forged_20_mb_selection_is_refused_with_one_line_and_never_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    app = AppTest.from_function(forged_selection_page, default_timeout=60)
    app.run()
    assert not app.exception
    [warning] = [item.value for item in app.warning]
    assert "not a block id" in warning and "20,000,000 characters" in warning and len(warning) < 200
    workspace = app.markdown[-1].value
    store = WorkspaceStore(tmp_path / "workspace.sqlite")
    assert "selection" not in store.settings(workspace)
    assert (tmp_path / "workspace.sqlite").stat().st_size < 1_000_000


def test_each_setting_and_all_settings_are_bounded_and_an_old_oversized_value_is_dropped(tmp_path):
    store = WorkspaceStore(tmp_path / "workspace.sqlite")
    workspace = store.create(SPEC, "start")
    store.update_setting(workspace, "head", "retinanet")
    with pytest.raises(WorkspaceError, match=r"'sweep' is 20,000,013 bytes, over the limit of 262,144; not kept"):
        store.update_setting(workspace, "sweep", {"sizes": FORGED})
    with pytest.raises(WorkspaceError, match="over the limit"):
        store.save_settings(workspace, {"selection": FORGED})
    for index in range(4):  # 4 x 240 KB fit one by one; the fifth would pass 1 MiB together
        store.update_setting(workspace, f"part{index}", "x" * 240_000)
    with pytest.raises(WorkspaceError, match="settings would be"):
        store.update_setting(workspace, "part4", "x" * 240_000)
    assert sorted(store.settings(workspace)) == ["head", "part0", "part1", "part2", "part3"]
    with sqlite3.connect(store.path) as connection:  # as an older version stored it
        connection.execute("UPDATE workspaces SET settings = ? WHERE id = ?",
                           (json.dumps({"selection": FORGED, "head": "retinanet"}), workspace))
    assert store.settings(workspace) == {"head": "retinanet"}
    assert store.update_setting(workspace, "pooling", "gap") == {"head": "retinanet", "pooling": "gap"}
    assert len(store.settings(workspace)["head"]) < MAX_SETTING_BYTES


def test_the_least_recently_used_workspaces_no_page_holds_go_first(tmp_path):
    store = WorkspaceStore(tmp_path / "workspace.sqlite")
    ids = [store.create(SPEC, f"start {index}") for index in range(6)]  # created (and used) in this order
    store.mark_used(ids[0])  # now the most recently used
    removed = store.enforce_limits(keep={ids[1]}, limits=(3, 2**30))
    assert removed == [ids[2], ids[3], ids[4]]  # 1 is held by an open page, 0 was used last
    assert [store.exists(workspace) for workspace in ids] == [True, True, False, False, False, True]
    assert store.enforce_limits(limits=(3, 2**30)) == []


def test_the_file_stays_bounded_while_visitors_keep_making_workspaces(tmp_path):
    store = WorkspaceStore(tmp_path / "workspace.sqlite")
    limits = (20, 400_000)  # bytes of stored text: a SpineNet-49 entry is about 4 KB
    for visit in range(80):
        workspace = store.create(SPEC, "start")
        for level in (3, 6):
            store.push(workspace, set_level(SPEC, "b7", level), f"L{level}")
        store.enforce_limits(keep={workspace}, limits=limits)
    with sqlite3.connect(store.path) as connection:
        count, text = connection.execute(
            "SELECT count(*), (SELECT sum(length(spec) + length(description)) FROM history) FROM workspaces").fetchone()
    assert count <= 20 and text <= 400_000
    assert store.exists(workspace)
    assert store.path.stat().st_size < 2_000_000, store.path.stat().st_size  # freed pages are reused


@pytest.mark.parametrize("value", ["0", "-3", "1e3", "lots", "１０", "inf", "9" * 13])
def test_bad_limits_are_one_line_naming_the_value(monkeypatch, value):
    monkeypatch.setenv("SPINESCOPE_MAX_WORKSPACES", value)
    with pytest.raises(WorkspaceError) as caught:
        workspace_limits()
    assert f"SPINESCOPE_MAX_WORKSPACES={ascii(value)}" in str(caught.value) and "\n" not in str(caught.value)
    monkeypatch.setenv("SPINESCOPE_MAX_WORKSPACES", " 40 ")
    monkeypatch.setenv("SPINESCOPE_MAX_WORKSPACE_MIB", "8")
    assert workspace_limits() == (40, 8 * 2**20)


def test_the_app_with_a_bad_limit_says_so_in_one_line_and_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    monkeypatch.setenv("SPINESCOPE_MAX_WORKSPACE_MIB", "lots")
    from pathlib import Path

    app = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app" / "main.py"), default_timeout=60)
    app.run()
    assert not app.exception
    lines = [item.value.replace("\\", "") for item in app.error]
    assert any("SPINESCOPE_MAX_WORKSPACE_MIB='lots'" in line and "Using the defaults" in line for line in lines), lines
    assert WorkspaceStore(tmp_path / "workspace.sqlite").exists(app.query_params["ws"][0]
                                                                if isinstance(app.query_params["ws"], list)
                                                                else app.query_params["ws"])


def test_visits_over_the_limit_remove_old_workspaces_but_never_one_a_sweep_will_write_to(tmp_path, monkeypatch):
    """Real AppTest visits with SPINESCOPE_MAX_WORKSPACES=2 and no page holding its workspace (HOLD_SECONDS 0):
    each new visit removes the least recently used, except the one whose sweep (a real worker) still runs."""
    import time
    from pathlib import Path

    from spinescope.app import session

    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    monkeypatch.setenv("SPINESCOPE_MAX_WORKSPACES", "2")
    monkeypatch.setattr(session, "HOLD_SECONDS", 0)
    main = str(Path(__file__).resolve().parents[2] / "app" / "main.py")

    def visit():
        app = AppTest.from_file(main, default_timeout=60)
        app.run()
        assert not app.exception
        return app

    sweeper = visit()
    sweeper.session_state["tab"] = "Sweeps"
    sweeper.run()
    next(item for item in sweeper.text_input if item.label == "Input sizes (px, comma list)").set_value("64")
    next(item for item in sweeper.number_input if item.label == "Timed iterations").set_value(100000)
    next(item for item in sweeper.selectbox if item.label == "Device").set_value("cpu")
    sweeper.run()
    next(item for item in sweeper.button if item.label == "Start sweep").click()
    sweeper.run()
    store = WorkspaceStore(tmp_path / "workspace.sqlite")
    kept = sweeper.query_params["ws"]
    try:
        visits = [visit() for _ in range(3)]
        ids = [app.query_params["ws"] for app in visits]
        assert store.exists(kept) and not store.exists(ids[0]) and not store.exists(ids[1]) and store.exists(ids[2])
    finally:
        next(item for item in sweeper.button if item.label == "Cancel sweep").click()
        sweeper.run()
        for _ in range(40):
            if not any(item.label == "Cancel sweep" for item in sweeper.run().button):
                break
            time.sleep(0.25)
