"""A sweep on a Ray cluster: every grid point is a Ray task that runs its own latency job (its own worker
process), with `num_gpus=1` on a GPU (one point per GPU at a time) or `num_cpus=1` per CPU worker. Results stream
back as tasks finish (`ray.wait`). Ray retries a task once when its worker process or node is lost
(`max_retries=1`); a point that fails again, or whose run fails, is reported with its error, never dropped.

    ray.init(address)  # or let `run_on_ray` connect: address "auto", "ray://host:10001", or "local"
    records, failures = run_on_ray(points, options, address=...)

Connecting to a cluster (an address other than "local") ships SpineScope with the job (`runtime_env`: the
repository as its working directory from a checkout, the installed package as a module otherwise), so the nodes
need only the same Python packages (requirements.txt).
"""
from __future__ import annotations

from pathlib import Path

import spinescope
from spinescope.extras import require
from spinescope.analysis.sweep.grid import Point, RunOptions, point_record, request_for
from spinescope.spinenet.input_size import size_to_json

ADDRESS_VARIABLE = "SPINESCOPE_RAY"
EXCLUDES = [".git", ".venv", "**/__pycache__", "docs", "tests/browser", "*.sqlite"]


def _measure_point(point: Point, options: RunOptions):
    """Runs in a Ray worker: one latency job for one point; returns its LatencyResult (not saved here)."""
    from spinescope.analysis.latency.job import LatencyJob

    threads = options.threads or (None if options.device == "cuda" else 1)
    job = LatencyJob([request_for(point, options)], device=options.device, threads=threads, iters=options.iters,
                     warmup=options.warmup, timeout=options.timeout, per_block=options.per_block)
    return job.start().result()[0]


def connect(address: str | None):
    """Connects to Ray unless already connected: `address` 'local' starts a local cluster on this machine."""
    ray = require("ray")

    if ray.is_initialized():
        return ray
    if address in (None, "", "local"):
        ray.init(include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    else:
        ray.init(address=address, log_to_driver=False, runtime_env=runtime_env())
    return ray


def runtime_env() -> dict:
    """Returns the Ray runtime_env that ships SpineScope to a cluster's nodes."""
    if spinescope.CHECKOUT:
        return {"working_dir": str(spinescope.PACKAGE_PARENT), "excludes": EXCLUDES}
    return {"py_modules": [str(Path(spinescope.__file__).parent)], "excludes": ["**/__pycache__"]}


def run_on_ray(points: list[Point], options: RunOptions, *, address: str | None = None, on_point=None,
               save: bool = True, gpu: bool | None = None, measure=_measure_point) -> tuple[list[dict], list[dict]]:
    """Submits one task per point and collects them as they finish; stores each result in the history (on the
    driver, when `save`) and calls `on_point(record)` as each arrives. Returns (records in grid order, failures:
    one {spec, input_size, batch, precision, error} per point that failed after its retry).
    `measure(point, options)` is what each task runs (a LatencyResult); only tests pass another one (one that
    kills its own worker process, to check the retry), never a user."""
    ray = connect(address)
    from ray.exceptions import RayError, RayTaskError

    if gpu is None:
        gpu = options.device == "cuda" or (options.device == "auto" and ray.cluster_resources().get("GPU", 0) > 0)
    resources = {"num_gpus": 1, "num_cpus": 1} if gpu else {"num_cpus": 1}
    task = ray.remote(max_retries=1, retry_exceptions=False, **resources)(measure)
    pending = {task.remote(point, options): point for point in points}
    done: dict[tuple, dict] = {}
    failures = []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            point = pending.pop(ref)
            try:
                result = ray.get(ref)
            except RayTaskError as error:  # the run itself failed (refused, out of memory, crashed)
                cause = error.cause if error.cause is not None else error
                failures.append(_failure(point, cause))
                continue
            except RayError as error:  # the worker or its node was lost twice
                failures.append(_failure(point, error))
                continue
            if save:
                from spinescope.analysis.latency.history import save_results

                result = save_results([result])[0][0]
            done[point.key] = point_record(point, result, options)
            if on_point is not None:
                on_point(done[point.key])
    return [done[point.key] for point in points if point.key in done], failures


def _failure(point: Point, error: BaseException) -> dict:
    text = str(error).strip().splitlines()
    return {"spec": point.spec_arg, "input_size": size_to_json(point.input_size), "batch": point.batch,
            "precision": point.precision, "error": f"{type(error).__name__}: {text[-1] if text else ''}"[:300]}
