"""Where SpineScope keeps its files (latency history, the app's workspace)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

HOME_VARIABLE = "SPINESCOPE_HOME"
_WRITABLE: set[Path] = set()  # folders already shown to be writable by this process


class DataDirError(OSError):
    """SpineScope's data directory cannot be created or written; the message is one line naming it and the fix."""


def data_dir() -> Path:
    """Returns SpineScope's data directory, created if missing: `$SPINESCOPE_HOME` when set, otherwise the
    per-user data directory of the platform (e.g. ~/.local/share/spinescope on Linux). Raises DataDirError when it
    cannot be created or written."""
    configured = os.environ.get(HOME_VARIABLE, "").strip()
    if configured:
        path = Path(configured).expanduser()
        where = f"{HOME_VARIABLE}={ascii(str(path))[1:-1]}"
    else:
        from platformdirs import user_data_path

        path = user_data_path("spinescope", appauthor=False)
        where = f"SpineScope's data directory {ascii(str(path))[1:-1]}"
    if path in _WRITABLE:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # the folder may exist and still not be writable
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise DataDirError(f"cannot use {where} ({reason}); set {HOME_VARIABLE} to a writable directory") from None
    _WRITABLE.add(path)
    return path
