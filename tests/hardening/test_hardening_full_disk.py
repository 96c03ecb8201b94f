"""A full disk, for real: SPINESCOPE_HOME on a small tmpfs filled to its last byte. A sweep measures its points and
prints them, then says in one line that the history was not stored and exits 1 (not 0); the app's workspace says
the disk is full and how to get space, not "make it writable". Mounting needs root (as on the CI machine); where
it is not allowed the tests skip and say why."""
from __future__ import annotations

import errno
import json
import subprocess
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from spinescope.analysis.cli import main
from spinescope.app.workspace import WorkspaceError, WorkspaceStore
from spinescope.spinenet.builtins import load_builtin

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """A 512 KiB tmpfs holding an empty `home/` and a file that takes every free byte; SPINESCOPE_HOME points there."""
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()[:80]}")
    try:
        (mount / "home").mkdir()
        with open(mount / "filler", "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"\0" * 4096)
            except OSError as error:
                assert error.errno == errno.ENOSPC
        monkeypatch.setenv("SPINESCOPE_HOME", str(mount / "home"))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_sweep_on_a_full_disk_prints_its_points_then_fails_in_one_line(full_disk, capsys):
    code = main(["sweep", "spinenet-49s", "--input-size", "64", "--iters", "1", "--warmup", "0", "--device", "cpu",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    data = json.loads(out)
    assert len(data["points"]) == 1 and data["points"][0]["median_ms"] > 0  # measured all the same
    assert data["history_warning"].startswith("history not saved: ") and "full" in data["history_warning"]
    assert err == f"error: {data['history_warning']}\n"


def test_the_workspace_on_a_full_disk_says_so(full_disk):
    with pytest.raises(WorkspaceError) as raised:
        WorkspaceStore(full_disk / "home" / "workspace.sqlite").create(load_builtin("spinenet-49"), "open")
    message = str(raised.value)
    assert "the disk holding it is full" in message and "writable" not in message
    assert "\n" not in message


def test_the_app_on_a_full_disk_says_so_in_one_line(full_disk):
    app = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120).run()
    assert not app.exception
    (error,) = [element.value for element in app.error]
    assert "the disk holding it is full" in error and "writable" not in error and "\n" not in error
