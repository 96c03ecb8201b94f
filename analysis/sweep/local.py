"""A sweep on this machine: every grid point in one latency job (one worker process), timed interleaved.

    job = local_job(points, options).start()    # a LatencyJob: progress(), cancel(), done(), result()
    records, warning = local_records(points, job.result(), options)   # stores every point in the history
or, blocking: `run_local(points, options)`.
"""
from __future__ import annotations

from spinescope.analysis.latency.job import LatencyJob, wait_for
from spinescope.analysis.sweep.grid import Point, RunOptions, point_record, request_for


def local_job(points: list[Point], options: RunOptions) -> LatencyJob:
    """Returns the (unstarted) LatencyJob that measures every point; its time limit is `options.timeout` per
    point. Raises LatencyError('invalid') for bad options."""
    return LatencyJob([request_for(point, options) for point in points], device=options.device,
                      threads=options.threads, iters=options.iters, warmup=options.warmup,
                      timeout=options.timeout * len(points), per_block=options.per_block)


def local_records(points: list[Point], results, options: RunOptions, *, on_point=None,
                  save: bool = True) -> tuple[list[dict], str | None]:
    """Stores the job's results in the history (when `save`) and returns (one record per point in grid order,
    None or the one-line warning that the history could not be written), calling `on_point(record)` per point."""
    warning = None
    if save:
        from spinescope.analysis.latency.history import save_results

        results, warning = save_results(results)
    records = []
    for point, result in zip(points, results):
        records.append(point_record(point, result, options))
        if on_point is not None:
            on_point(records[-1])
    return records, warning


def run_local(points: list[Point], options: RunOptions, *, on_point=None, on_progress=None,
              save: bool = True) -> tuple[list[dict], list[dict], str | None]:
    """Measures every point in one LatencyJob; stores each result in the history (when `save`); calls
    `on_point(record)` per point. Returns (records in grid order, failures: always [] here, None or the one-line
    warning that the history could not be written); a failed run raises LatencyError with one line."""
    results = wait_for(local_job(points, options).start(), on_progress)
    records, warning = local_records(points, results, options, on_point=on_point, save=save)
    return records, [], warning
