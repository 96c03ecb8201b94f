"""What the command-line tests share: the `spinescope` command run as a subprocess from the repository."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args, timeout: float = 300, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Returns the finished `python -m spinescope ARGS...` (text stdout and stderr captured)."""
    return subprocess.run([sys.executable, "-m", "spinescope", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
