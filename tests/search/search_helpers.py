"""Helpers the search tests share: a small space, runs compared by their results, an evaluation that kills its own
worker process (importable, so a spawned pool worker can unpickle it)."""
import os
from pathlib import Path

from spinescope.analysis.search.engine import evaluate_task


def results(rows: list[dict]) -> list[tuple]:
    """What two runs must agree on: per index, the candidate (content hash), where it came from, its objective."""
    return [(row["idx"], row["spec_hash"], row["origin"], row["parent_idx"], row["status"], row["objective"])
            for row in rows]


class DyingEvaluate:
    """Evaluates as the search does, but the worker process evaluating candidate `index` dies (os._exit, as a lost
    node's worker vanishes) on its first `deaths` attempts; attempts are counted in a file in `folder`."""

    def __init__(self, folder: Path, index: int, deaths: int = 1):
        self.folder, self.index, self.deaths = Path(folder), index, deaths

    def attempts(self) -> int:
        path = self.folder / f"{self.index}.attempts"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def __call__(self, task: dict) -> dict:
        if task["index"] == self.index:
            with open(self.folder / f"{self.index}.attempts", "a") as file:
                file.write("attempt\n")
            if self.attempts() <= self.deaths:
                os._exit(1)
        return evaluate_task(task)


class SlowEvaluate:
    """Evaluates as the search does after `seconds` of sleep (a long training, for cancel tests)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __call__(self, task: dict) -> dict:
        import time

        time.sleep(self.seconds)
        return evaluate_task(task)
