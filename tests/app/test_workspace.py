"""The SQLite workspace: history survives new connections and processes, designs, isolation, concurrent writers."""
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import spinescope.app.workspace as workspace_module
from spinescope.app.workspace import WorkspaceError, WorkspaceStore, is_workspace_id, new_workspace_id
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import set_block_fn, set_level

ROOT = Path(__file__).resolve().parents[2]
SPINENET_49 = load_builtin("spinenet-49")


@pytest.fixture
def store(tmp_path):
    return WorkspaceStore(tmp_path / "home" / "workspace.sqlite")


def test_history_round_trips_with_cursor_and_kinds(store, tmp_path):
    workspace = store.create(SPINENET_49, "load SpineNet-49")
    first = set_level(SPINENET_49, "b7", 5)
    second = set_block_fn(first, "b3", "bottleneck")
    store.push(workspace, first, "b7 level 4 -> 5")
    store.push(workspace, second, "b3 residual -> bottleneck")
    store.move_cursor(workspace, -1)
    reopened = WorkspaceStore(tmp_path / "home" / "workspace.sqlite").load(workspace)
    assert [entry.spec for entry in reopened.entries] == [SPINENET_49, first, second]
    assert [entry.kind for entry in reopened.entries] == ["load", "edit", "edit"]
    assert reopened.current == first and reopened.can_redo
    assert reopened.redo_description == "b3 residual -> bottleneck"


def test_push_after_undo_drops_the_redo_entries(store):
    workspace = store.create(SPINENET_49, "start")
    store.push(workspace, set_level(SPINENET_49, "b7", 5), "a")
    store.move_cursor(workspace, -1)
    replacement = set_level(SPINENET_49, "b7", 3)
    store.push(workspace, replacement, "b")
    history = store.load(workspace)
    assert [entry.description for entry in history.entries] == ["start", "b"]
    assert history.current == replacement and not history.can_redo
    with pytest.raises(WorkspaceError, match="nothing to redo"):
        store.move_cursor(workspace, 1)
    store.move_cursor(workspace, -1)
    with pytest.raises(WorkspaceError, match="nothing to undo"):
        store.move_cursor(workspace, -1)


def test_workspaces_are_isolated_and_revisions_count_writes(store):
    mine, yours = store.create(SPINENET_49, "start"), store.create(SPINENET_49, "start")
    assert mine != yours and is_workspace_id(mine)
    assert store.revision(mine) == 0
    assert store.push(mine, set_level(SPINENET_49, "b7", 5), "edit") == 1
    assert store.load(yours).current == SPINENET_49
    assert store.revision(yours) == 0 and store.revision(new_workspace_id()) is None
    assert store.exists(mine) and not store.exists("../../etc/passwd") and not store.exists(new_workspace_id())
    assert [info.id for info in store.recent()][:2] == [mine, yours]


def test_create_with_a_chosen_id_and_reject_bad_ids(store):
    chosen = new_workspace_id()
    assert store.create(SPINENET_49, "start", chosen) == chosen
    with pytest.raises(WorkspaceError, match="already exists"):
        store.create(SPINENET_49, "start", chosen)
    with pytest.raises(WorkspaceError, match="32 hexadecimal"):
        store.create(SPINENET_49, "start", "not-an-id")
    with pytest.raises(WorkspaceError, match="no workspace"):
        store.load(new_workspace_id())


def test_settings_round_trip(store):
    workspace = store.create(SPINENET_49, "start")
    assert store.settings(workspace) == {}
    store.save_settings(workspace, {"input_size": 512, "head": "retinanet"})
    assert store.settings(workspace) == {"input_size": 512, "head": "retinanet"}


def test_designs_save_list_load_replace_delete(store):
    edited = set_level(SPINENET_49, "b7", 5)
    assert store.save_design("  my <design>  ", edited) is False
    assert store.save_design("my <design>", SPINENET_49) is True
    assert store.load_design("my <design>") == SPINENET_49
    store.save_design("second", edited)
    assert [info.name for info in store.designs()] == ["second", "my <design>"]
    assert store.designs()[0].spec_name == "SpineNet-49"
    store.delete_design("second")
    with pytest.raises(WorkspaceError, match="no saved design named 'second'"):
        store.load_design("second")
    for bad in ("", "   ", "x" * 101, "tab\there"):
        with pytest.raises(WorkspaceError):
            store.save_design(bad, SPINENET_49)


def test_a_damaged_stored_spec_is_a_clear_error_numbered_as_the_edit_history_lists_it(store):
    workspace = store.create(SPINENET_49, "start")
    store.push(workspace, set_level(SPINENET_49, "b7", 5), "b7: level L4 → L5")
    with sqlite3.connect(store.path) as connection:  # the second entry, the one the Edit history lists as 2.
        connection.execute("UPDATE history SET spec = '{\"family\": \"nope\"}' WHERE workspace = ? AND position = "
                           "(SELECT MAX(position) FROM history WHERE workspace = ?)", (workspace, workspace))
    with pytest.raises(WorkspaceError, match="history entry 2 is not a valid spec: family"):
        store.load(workspace)


def test_history_is_pruned_to_the_newest_entries(store, monkeypatch):
    monkeypatch.setattr(workspace_module, "MAX_HISTORY", 5)
    workspace = store.create(SPINENET_49, "start")
    spec = SPINENET_49
    for level in (3, 5, 6, 7, 1, 2, 4):
        spec = set_level(spec, "b7", level)
        store.push(workspace, spec, f"level {level}")
    history = store.load(workspace)
    assert [entry.description for entry in history.entries] == ["level 6", "level 7", "level 1", "level 2",
                                                               "level 4"]
    assert history.current == spec and history.base == history.entries[0].spec


def test_history_survives_another_process(store):
    workspace = store.create(SPINENET_49, "start")
    code = (
        "import sys; from app.workspace import WorkspaceStore; from spinenet.edits import set_level;"
        "s = WorkspaceStore(sys.argv[1]); h = s.load(sys.argv[2]);"
        "s.push(sys.argv[2], set_level(h.current, 'b7', 6), 'from another process')"
    )
    subprocess.run([sys.executable, "-c", code, str(store.path), workspace], cwd=ROOT, check=True)
    assert store.load(workspace).current.block("b7").level == 6


def test_concurrent_writers_never_corrupt_the_file(store):
    workspaces = [store.create(SPINENET_49, "start") for _ in range(4)]
    shared = workspaces[0]
    errors = []

    def writer(own, levels):
        try:
            spec = SPINENET_49
            for level in levels:
                spec = set_level(spec, "b7", level)
                store.push(own, spec, f"level {level}")
                store.push(shared, spec, "shared")
                store.save_design(f"design {own}", spec)
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(own, [3, 5, 6, 2, 1] * 4)) for own in workspaces[1:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for own in workspaces[1:]:
        assert len(store.load(own).entries) == 21
    assert len(store.load(shared).entries) == 1 + 3 * 20
    assert len(store.designs()) == 3
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_recent_lists_one_browsers_workspaces_with_what_they_hold(store):
    browser, other = new_workspace_id(), new_workspace_id()
    first = store.create(SPINENET_49, "open built-in spinenet-49", owner=browser)
    store.push(first, set_level(SPINENET_49, "b7", 5), "b7: level L4 → L5")
    second = store.create(SPINENET_49, "open design x", owner=browser)
    theirs = store.create(SPINENET_49, "open built-in spinenet-49", owner=other)
    listed = store.recent(10, owner=browser)
    assert [info.id for info in listed] == [second, first]
    assert [(info.entries, info.last, info.kind) for info in listed] == [
        (1, "open design x", "load"), (2, "b7: level L4 → L5", "edit")]
    assert [info.id for info in store.recent(10, owner=other)] == [theirs]
    with pytest.raises(WorkspaceError, match="browser id"):
        store.create(SPINENET_49, "start", owner="../x")
