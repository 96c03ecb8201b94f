"""The `spinescope` command: the CLI's subcommands (list, validate, analyze, compare, latency, ...) and
`spinescope app [--port N]`, which serves the Streamlit app on 127.0.0.1."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def register(subparsers) -> None:
    """Adds the `app` subcommand."""
    from spinescope.analysis.cli import int_in_range

    sub = subparsers.add_parser("app", help="serve the app on http://127.0.0.1:PORT (headless; Ctrl+C stops it)")
    sub.add_argument("--port", type=int_in_range(1, 65535, "--port"), default=8501, help="default 8501")
    sub.set_defaults(handler=lambda args: run_app(args.port))


def run_app(port: int) -> int:
    """Becomes `streamlit run` on the app's serve.py (main.py served with the middleware that sets the browser-id
    cookie HttpOnly), bound to 127.0.0.1: this process is replaced (exec), so stopping it (Ctrl+C, SIGTERM to its
    pid) stops the server; nothing returns unless Streamlit is missing (a one-line error). The app's settings are
    its own `.streamlit/config.toml` beside main.py, which Streamlit reads wherever it is started; the settings that
    keep it local and private are also given as flags, so no other config file can undo them."""
    import spinescope.app
    from spinescope.extras import require

    require("streamlit")
    script = Path(spinescope.app.__file__).resolve().parent / "serve.py"
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", "127.0.0.1",
               "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)
    return 1  # not reached: execv returns only by raising


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status (0 ok, 1 a check failed, 2 bad input)."""
    from spinescope.analysis.cli import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    sys.exit(main())
