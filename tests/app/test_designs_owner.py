"""Saved designs belong to the browser that saved them: another browser (a real second AppTest session, its own
browser id) neither lists, opens, replaces nor deletes them; designs of a file written before designs had owners
still load, for everyone, and no browser can delete them."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_runs import run
from spinescope.app.workspace import WorkspaceError, WorkspaceStore, new_workspace_id
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import set_level

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"
SPINENET_49 = load_builtin("spinenet-49")


def browser() -> AppTest:
    return run(AppTest.from_file(str(APP), default_timeout=60))


def save(app: AppTest, name: str) -> None:
    app.text_input(key="design_name").set_value(name)
    app.button(key="save_design").click()
    run(app)


def listed(app: AppTest) -> list[str]:
    boxes = [item for item in app.selectbox if item.key == "design_choice"]
    return list(boxes[0].options) if boxes else []


def test_another_browser_neither_lists_replaces_nor_deletes_a_design(home):
    mine, theirs = browser(), browser()
    assert mine.session_state["browser_id"] != theirs.session_state["browser_id"]
    save(mine, "plan")
    assert [option.split(" (")[0] for option in listed(mine)] == ["plan"]
    assert listed(theirs) == [] and not [item for item in run(theirs).selectbox if item.key == "design_choice"]
    save(theirs, "plan")  # their own design of the same name: mine is untouched
    store = WorkspaceStore(home / "workspace.sqlite")
    assert store.load_design("plan", mine.session_state["browser_id"]) == SPINENET_49
    with pytest.raises(WorkspaceError, match="no saved design"):
        store.delete_design("plan", new_workspace_id())
    run(theirs).selectbox(key="design_choice").set_value("plan")
    theirs.button(key="delete_design").click()
    run(theirs)
    assert listed(run(theirs)) == []
    assert [option.split(" (")[0] for option in listed(run(mine))] == ["plan"]


def test_an_old_files_designs_without_owner_still_load_and_cannot_be_deleted_by_a_browser(tmp_path):
    path = tmp_path / "workspace.sqlite"
    with sqlite3.connect(path) as connection:  # the designs table as it was before owners
        connection.execute("CREATE TABLE designs (name TEXT PRIMARY KEY, spec TEXT NOT NULL, spec_hash TEXT NOT NULL,"
                           " saved REAL NOT NULL)")
    seed = WorkspaceStore(tmp_path / "seed.sqlite")
    seed.save_design("old one", set_level(SPINENET_49, "b7", 5))
    with sqlite3.connect(tmp_path / "seed.sqlite") as source, sqlite3.connect(path) as target:
        target.executemany("INSERT INTO designs VALUES (?, ?, ?, ?)",
                           source.execute("SELECT name, spec, spec_hash, saved FROM designs").fetchall())
    store = WorkspaceStore(path)
    browser_a, browser_b = new_workspace_id(), new_workspace_id()
    for owner in (browser_a, browser_b, None):
        assert [info.name for info in store.designs(owner)] == ["old one"]
        assert store.load_design("old one", owner) == set_level(SPINENET_49, "b7", 5)
    with pytest.raises(WorkspaceError, match="shared"):
        store.delete_design("old one", browser_a)
    assert store.save_design("old one", SPINENET_49, browser_a) is False  # its own copy, listed in place of it
    assert store.load_design("old one", browser_a) == SPINENET_49
    assert store.load_design("old one", browser_b) == set_level(SPINENET_49, "b7", 5)
    assert len(store.designs(browser_a)) == 1
