"""The `spinescope` command: `spinescope app [--port N]` starts the Streamlit app; every other subcommand is the
CLI's (`python -m analysis ...`: list, validate, analyze, paper, compare, latency, history)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app" / "main.py"


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["app"]:
        return run_app(argv[1:])
    if argv[:1] in (["-h"], ["--help"]):
        print("spinescope app [--port N]    the Streamlit app on http://127.0.0.1:N (default 8501)")
    from analysis.cli import main as cli_main

    return cli_main(argv)


def run_app(argv: list[str]) -> int:
    """Runs `streamlit run app/main.py` on 127.0.0.1, headless; `--port N` picks the port."""
    port = "8501"
    if argv[:1] == ["--port"] and len(argv) == 2 and argv[1].isascii() and argv[1].isdigit():
        port = argv[1]
    elif argv:
        print(f"error: spinescope app takes only --port N, got {ascii(' '.join(argv))}", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1",
               "--server.port", port, "--server.headless", "true"]
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
