"""A session's history kept up to date by reading only what changed: its own writes built in memory, another
writer's read since the revision it holds, and always the same history as a full read of the file."""
import sqlite3

import pytest

import spinescope.app.workspace as workspace_module
from spinescope.app.workspace import WorkspaceError, WorkspaceStore, new_workspace_id
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.edits import set_level

SPINENET_49 = load_builtin("spinenet-49")


@pytest.fixture
def store(tmp_path):
    return WorkspaceStore(tmp_path / "home" / "workspace.sqlite")


def level(spec) -> int:
    return spec.block("b7").level


def full_read(store, workspace):
    """The history as a second store on the same file reads it from scratch: (levels of b7, descriptions, cursor)."""
    history = WorkspaceStore(store.path).load(workspace)
    return [level(entry.spec) for entry in history.entries], [entry.description for entry in history.entries], \
        history.cursor


def held(tracked):
    history = tracked.history
    return [level(entry.spec) for entry in history.entries], [entry.description for entry in history.entries], \
        history.cursor


def test_own_pushes_and_undos_built_in_memory_match_the_file_through_pruning(store, monkeypatch):
    monkeypatch.setattr(workspace_module, "MAX_HISTORY", 4)
    workspace = store.create(SPINENET_49, "start")
    tracked = store.track(workspace)
    spec = SPINENET_49
    for step, target in enumerate([5, 3, 6, None, None, 2, 7, 1, None, 5]):
        if target is None:
            tracked = store.move_cursor_tracked(tracked, -1)
            spec = tracked.history.current
        else:
            spec = set_level(spec, "b7", target)
            tracked = store.push_tracked(tracked, spec, f"L{target}")
        assert held(tracked) == full_read(store, workspace), f"after step {step + 1}"
        assert tracked.revision == step + 1 == store.revision(workspace)
    # Derived by hand: 5 3 6, two undos (cursor on 5), 2 replaces 3 6, then 7 1, pruned to the newest four, undo, 5.
    assert held(tracked) == ([5, 2, 7, 5], ["L5", "L2", "L7", "L5"], 3)
    with pytest.raises(WorkspaceError, match="nothing to redo"):
        store.move_cursor_tracked(tracked, 1)


def test_another_writers_push_over_an_undone_entry_replaces_it(store):
    """The other tab undoes and pushes at the position this session still holds an entry for."""
    workspace = store.create(SPINENET_49, "start")
    first = set_level(SPINENET_49, "b7", 5)
    mine = store.push_tracked(store.push_tracked(store.track(workspace), first, "L5"), set_level(first, "b7", 6), "L6")
    store.move_cursor(workspace, -1)
    store.push(workspace, set_level(first, "b7", 2), "other tab: L2")
    caught_up = store.track(workspace, mine)
    assert held(caught_up) == ([4, 5, 2], ["start", "L5", "other tab: L2"], 2) == full_read(store, workspace)
    after_mine = store.push_tracked(caught_up, set_level(first, "b7", 3), "L3")
    store.push(workspace, set_level(first, "b7", 1), "other tab: L1")
    assert held(store.push_tracked(after_mine, set_level(first, "b7", 7), "L7")) == full_read(store, workspace) == (
        [4, 5, 2, 3, 1, 7], ["start", "L5", "other tab: L2", "L3", "other tab: L1", "L7"], 5)


def test_catching_up_reads_only_the_entries_written_since(store):
    workspace = store.create(SPINENET_49, "start")
    tracked = store.push_tracked(store.track(workspace), set_level(SPINENET_49, "b7", 5), "L5")
    assert store.track(workspace, tracked) is tracked  # nothing changed: nothing read
    with sqlite3.connect(store.path) as connection:  # the entries this session holds no longer parse in the file
        connection.execute("UPDATE history SET spec = '{}' WHERE workspace = ?", (workspace,))
    store.push(workspace, set_level(SPINENET_49, "b7", 6), "other tab: L6")
    caught_up = store.track(workspace, tracked)
    assert held(caught_up) == ([4, 5, 6], ["start", "L5", "other tab: L6"], 2)
    with pytest.raises(WorkspaceError, match="history entry 1 is not a valid spec"):
        WorkspaceStore(store.path).load(workspace)


def test_a_workspace_made_again_under_the_same_id_is_read_in_full(store, tmp_path):
    workspace = store.create(SPINENET_49, "start")
    tracked = store.push_tracked(store.track(workspace), set_level(SPINENET_49, "b7", 5), "L5")
    with sqlite3.connect(store.path) as connection:
        connection.execute("DELETE FROM workspaces WHERE id = ?", (workspace,))
        connection.execute("DELETE FROM history WHERE workspace = ?", (workspace,))
    store.create(set_level(SPINENET_49, "b7", 3), "made again", workspace)
    store.push(workspace, set_level(SPINENET_49, "b7", 2), "L2")
    assert held(store.track(workspace, tracked)) == ([3, 2], ["made again", "L2"], 1)


def test_a_file_written_before_rows_recorded_their_revision_is_read_and_tracked(tmp_path):
    path = tmp_path / "workspace.sqlite"
    old_schema = workspace_module._SCHEMA.replace("    written INTEGER NOT NULL DEFAULT 0,\n", "")
    assert "written" not in old_schema
    workspace = new_workspace_id()
    with sqlite3.connect(path) as connection:  # as an older version wrote it
        connection.executescript(old_schema)
        connection.execute("INSERT INTO workspaces (id, created, updated, cursor) VALUES (?, 1, 1, 0)", (workspace,))
        connection.execute("INSERT INTO history VALUES (?, 0, 'load', 'start', ?, 1)",
                           (workspace, workspace_module._spec_text(SPINENET_49)))
    store = WorkspaceStore(path)
    tracked = store.push_tracked(store.track(workspace), set_level(SPINENET_49, "b7", 5), "L5")
    store.push(workspace, set_level(SPINENET_49, "b7", 6), "other tab: L6")
    assert held(store.track(workspace, tracked)) == ([4, 5, 6], ["start", "L5", "other tab: L6"], 2)
