"""A sweep on this machine: every grid point in one latency job (one worker process), timed interleaved."""
from __future__ import annotations

from analysis.latency.job import LatencyJob, wait_for
from analysis.sweep.grid import Point, RunOptions, point_record, request_for


def run_local(points: list[Point], options: RunOptions, *, on_point=None, on_progress=None,
              save: bool = True) -> tuple[list[dict], list[dict]]:
    """Measures every point in one LatencyJob; stores each result in the history (when `save`); calls
    `on_point(record)` per point. Returns (records in grid order, failures: always [] here; a failed run raises
    LatencyError with one line)."""
    job = LatencyJob([request_for(point, options) for point in points], device=options.device,
                     threads=options.threads, iters=options.iters, warmup=options.warmup,
                     timeout=options.timeout * len(points), per_block=options.per_block)
    results = wait_for(job.start(), on_progress)
    if save:
        from analysis.latency.history import save_results

        results, _ = save_results(results)
    records = []
    for point, result in zip(points, results):
        records.append(point_record(point, result, options))
        if on_point is not None:
            on_point(records[-1])
    return records, []
