"""Where SpineScope keeps its files (latency history, the app's workspace)."""
from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "SPINESCOPE_HOME"


def data_dir() -> Path:
    """Returns SpineScope's data directory, created if missing: `$SPINESCOPE_HOME` when set, otherwise the
    per-user data directory of the platform (e.g. ~/.local/share/spinescope on Linux)."""
    configured = os.environ.get(HOME_VARIABLE, "").strip()
    if configured:
        path = Path(configured).expanduser()
    else:
        from platformdirs import user_data_path

        path = user_data_path("spinescope", appauthor=False)
    path.mkdir(parents=True, exist_ok=True)
    return path
