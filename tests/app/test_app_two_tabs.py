"""Two tabs (or a shared link) on one workspace, through AppTest: an edit made from a page drawn before another
tab's edit never silently reverts it. Edits to other fields merge on top of it, with a note; an edit of the same
field, an undo or redo, or a table whose rows changed under it is refused with a one-line note."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_runs import run
from spinescope.app.workspace import StaleRevision, WorkspaceStore
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import rename, set_block_fn, set_level

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"
SPINENET_49 = load_builtin("spinenet-49")


def start(query: dict | None = None) -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.query_params.update(query or {})
    return run(app)


def edit_tab(query: dict | None = None) -> AppTest:
    app = start(query)
    app.session_state["tab"] = "Edit"
    return run(app)


def pick(app: AppTest, label: str, block_id: str) -> None:
    """Selects `block_id` in the Edit tab's block box (the page is run again)."""
    next(item for item in app.selectbox if item.label == "Block to edit").set_value(block_id)
    run(app)


def choose(app: AppTest, label: str, value) -> AppTest:
    next(item for item in app.selectbox if item.label == label).set_value(value)
    return run(app)


def spec(app: AppTest):
    return app.session_state["history"].current


def notes(app: AppTest) -> list[str]:
    return [item.value.replace("\\", "") for kind in ("info", "warning", "error", "success")
            for item in getattr(app, kind)]


def two_tabs():
    """Tab A and tab B on one workspace, each showing the Edit tab as of the same revision."""
    tab_a = edit_tab()
    tab_b = edit_tab({"ws": tab_a.query_params["ws"]})
    pick(tab_a, "Block to edit", "b7")
    pick(tab_b, "Block to edit", "b8")
    return tab_a, tab_b


def test_a_stale_tabs_selectbox_edit_merges_on_top_of_the_other_tabs_edit_and_says_so(home):
    tab_a, tab_b = two_tabs()
    choose(tab_a, "Level", 5)
    assert spec(tab_a) == set_level(SPINENET_49, "b7", 5)
    choose(tab_b, "Block type", "bottleneck")  # drawn before A's edit: b7 is still L4 on this page
    both = set_block_fn(set_level(SPINENET_49, "b7", 5), "b8", "bottleneck")
    assert spec(tab_b) == both
    assert any("another tab" in line.lower() and "merged" in line for line in notes(tab_b)), notes(tab_b)
    assert edit_tab({"ws": tab_a.query_params["ws"]}).session_state["history"].current == both


def test_a_stale_tabs_table_merges_other_rows_and_refuses_a_row_the_other_tab_changed(home):
    tab_a, tab_b = two_tabs()
    tab_b.session_state["block_table_open"] = True
    editor = run(tab_b).data_editor[0]  # drawn at the same revision as tab A
    choose(tab_a, "Level", 5)
    tab_b.session_state[editor.key] = {"edited_rows": {6: {"block_fn": "bottleneck"}}, "added_rows": [],
                                       "deleted_rows": []}
    next(item for item in tab_b.button if item.label == "Apply table").click()
    run(tab_b)
    both = set_block_fn(set_level(SPINENET_49, "b7", 5), "b8", "bottleneck")
    assert spec(tab_b) == both
    assert any("another tab" in line.lower() and "merged" in line for line in notes(tab_b)), notes(tab_b)
    # Now A sets b8's level; B's table, drawn before, sets b8's level too: refused, A's value stays.
    editor = tab_b.data_editor[0]
    run(tab_a)
    pick(tab_a, "Block to edit", "b8")
    choose(tab_a, "Level", 6)
    tab_b.session_state[editor.key] = {"edited_rows": {6: {"level": 3}}, "added_rows": [], "deleted_rows": []}
    next(item for item in tab_b.button if item.label == "Apply table").click()
    run(tab_b)
    assert spec(tab_b) == set_level(both, "b8", 6)
    assert any("another tab" in line.lower() and "not applied" in line.lower() for line in notes(tab_b)), notes(tab_b)


def test_a_stale_tab_editing_the_same_field_is_refused_with_a_note(home):
    tab_a, tab_b = two_tabs()
    pick(tab_b, "Block to edit", "b7")
    choose(tab_a, "Level", 5)
    choose(tab_b, "Level", 6)  # B saw L4 and chose L6; A's L5 is newer and must not be overwritten silently
    assert spec(tab_b) == set_level(SPINENET_49, "b7", 5)
    assert any("another tab" in line.lower() and "not applied" in line.lower() for line in notes(tab_b)), notes(tab_b)


def test_a_stale_tabs_rename_merges_and_its_undo_is_refused(home):
    tab_a, tab_b = two_tabs()
    choose(tab_a, "Level", 5)
    tab_b.text_input(key="spec_name").set_value("mine")
    next(item for item in tab_b.button if item.label == "Rename").click()
    run(tab_b)
    assert spec(tab_b) == rename(set_level(SPINENET_49, "b7", 5), "mine")
    choose(tab_a, "Level", 3)  # tab B's Undo would now undo A's edit, not its rename
    next(item for item in tab_b.button if item.label == "Undo").click()
    run(tab_b)
    assert spec(tab_b) == rename(set_level(SPINENET_49, "b7", 3), "mine")
    assert any("changed" in line for line in notes(tab_b)), notes(tab_b)


def test_two_writers_from_the_same_revision_never_both_win(tmp_path):
    """Real threads on a real file: of 8 strict pushes based on one revision exactly one is written; the others
    get StaleRevision and write nothing, and a strict undo from the old revision is refused too."""
    store = WorkspaceStore(tmp_path / "workspace.sqlite")
    known = store.track(store.create(SPINENET_49, "start"))
    outcomes, barrier = [], threading.Barrier(8)

    def push(level):
        barrier.wait()
        try:
            store.push_tracked(known, set_level(SPINENET_49, "b7", level), f"L{level}", strict=True)
            outcomes.append("written")
        except StaleRevision:
            outcomes.append("stale")

    threads = [threading.Thread(target=push, args=(level,)) for level in (2, 3, 5, 6, 7, 2, 3, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["stale"] * 7 + ["written"]
    assert len(store.load(known.workspace_id).entries) == 2 and store.revision(known.workspace_id) == 1
    with pytest.raises(StaleRevision):
        store.move_cursor_tracked(known, -1, strict=True)
    assert store.load(known.workspace_id).cursor == 1


def stale_load_page():
    """A page whose load runs before it catches up, as a widget callback (an upload) does."""
    import streamlit as st

    from spinescope.app import session
    from spinescope.spinenet.builtins import load_builtin

    if st.session_state.pop("load_now", False):
        session.load_spec("io", load_builtin("resnet50-fpn"), "import resnet.yaml")
    session.start()
    session.show_notes("io")


def test_a_stale_tabs_load_is_applied_and_says_the_other_change_is_one_undo_back(home):
    tab_a = edit_tab()
    tab_b = AppTest.from_function(stale_load_page, default_timeout=60)
    tab_b.query_params["ws"] = tab_a.query_params["ws"]
    run(tab_b)
    pick(tab_a, "Block to edit", "b7")
    choose(tab_a, "Level", 5)
    tab_b.session_state["load_now"] = True
    run(tab_b)
    history = WorkspaceStore(home / "workspace.sqlite").load(tab_a.query_params["ws"])
    assert [entry.description for entry in history.entries] == ["open built-in spinenet-49", "b7: level L4 → L5",
                                                                "import resnet.yaml"]
    [line] = [item.value.replace("\\", "") for item in tab_b.success]
    assert line.startswith("Opened ResNet-50-FPN.") and "one Undo back" in line, line
