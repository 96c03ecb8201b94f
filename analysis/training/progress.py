"""A small progress bar on stderr for training steps (tqdm is not a dependency)."""
from __future__ import annotations

import sys
import time

WIDTH = 24


class ProgressBar:
    """Called as `bar(step, total, loss)` after each step: on a terminal, one line redrawn in place
    ("train  12/100 [###.....]  loss 1.234  2.1 steps/s  ETA 42 s"); elsewhere (a log file, a pipe) a line at every
    tenth of the run. `close()` ends the line."""

    def __init__(self, label: str = "train", stream=None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.start = None  # the time of the first step's report: model building is not counted
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.shown = -1
        self.open = False

    def __call__(self, step: int, total: int, loss: float) -> None:
        tenth = step * 10 // max(total, 1)
        if not self.tty and tenth == self.shown and step != total:
            return
        self.shown = tenth
        now = time.monotonic()
        if self.start is None:
            self.start, self.first = now, step
        elapsed = now - self.start
        rate = (step - self.first) / elapsed if elapsed > 0 else 0.0
        eta = (total - step) / rate if rate > 0 else 0.0
        filled = WIDTH * step // max(total, 1)
        line = (f"{self.label} {step:>{len(str(total))}}/{total} [{'#' * filled}{'.' * (WIDTH - filled)}]  "
                f"loss {loss:.3f}  {rate:.2f} steps/s  ETA {eta:.0f} s")
        if self.tty:
            self.stream.write("\r" + line)
            self.open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Ends the redrawn line (on a terminal)."""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False
