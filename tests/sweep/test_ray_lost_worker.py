"""A Ray worker process that dies mid-task (os._exit, as a lost node's worker would vanish) on a real local Ray
cluster: its point is retried once (max_retries=1) and measured; a point whose worker dies on every attempt is
tried exactly twice and then reported as failed with the error, never silently dropped."""
import os
from pathlib import Path

import pytest

from spinescope.analysis.sweep.grid import RunOptions, grid_points
from spinescope.analysis.sweep.ray_runner import _measure_point, run_on_ray
from spinescope.spinenet.builtins import load_builtin

OPTIONS = RunOptions(device="cpu", iters=1, warmup=0, threads=1, timeout=120)


@pytest.fixture(autouse=True)
def spinescope_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path / "home"))


def dying_measure(folder: Path, deaths: int):
    """Returns a task function (pickled by value: it is a closure) that appends one line per attempt to a file in
    `folder` named after the point, and kills its own worker process on the first `deaths` attempts."""
    def measure(point, options):
        attempts = folder / f"{point.spec_arg}-{point.batch}.attempts"
        with open(attempts, "a") as file:
            file.write("attempt\n")
        if len(attempts.read_text().splitlines()) <= deaths:
            os._exit(1)  # the worker process dies mid-task, without raising anything Ray could report
        return _measure_point(point, options)
    return measure


def attempts(folder: Path, name: str, batch: int) -> int:
    return len((folder / f"{name}-{batch}.attempts").read_text().splitlines())


def test_a_point_whose_worker_dies_once_is_retried_and_measured(ray_cluster, tmp_path):
    spec = load_builtin("spinenet-mobile-49xs")
    points = grid_points([("xs", spec, None)], [64], [1], ["fp32"])
    records, failures, _ = run_on_ray(points, OPTIONS, measure=dying_measure(tmp_path, deaths=1), save=False)
    assert failures == []
    assert [(r["spec"], r["input_size"], r["batch"]) for r in records] == [("xs", 64, 1)]
    assert records[0]["median_ms"] > 0
    assert attempts(tmp_path, "xs", 1) == 2  # the first attempt died, the retry measured it


def test_a_point_whose_worker_always_dies_is_tried_twice_then_reported(ray_cluster, tmp_path):
    spec = load_builtin("spinenet-mobile-49xs")
    points = grid_points([("xs", spec, None)], [64], [1, 2], ["fp32"])
    measure = dying_measure(tmp_path, deaths=2)  # both attempts of every point die: each is lost for good
    records, failures, _ = run_on_ray(points, OPTIONS, measure=measure, save=False)
    assert records == []
    assert sorted((f["spec"], f["input_size"], f["batch"], f["precision"]) for f in failures) == [
        ("xs", 64, 1, "fp32"), ("xs", 64, 2, "fp32")]
    for failure in failures:
        assert failure["error"].startswith(("WorkerCrashedError", "RayError", "LocalRayletDiedError",
                                            "NodeDiedError")), failure["error"]
        assert "\n" not in failure["error"]
    assert attempts(tmp_path, "xs", 1) == attempts(tmp_path, "xs", 2) == 2  # retried once, not more
