"""Sweeps: latency (and the training-memory estimate) over a grid of specs, input sizes, batches and precisions.

    grid.py        the grid: parsing the comma lists, the points, their latency requests
    local.py       every point in one latency worker process on this machine (timed interleaved)
    ray_runner.py  every point as a Ray task with its own worker process (one per GPU or per CPU worker),
                   results streamed back as they finish, lost points retried once then reported
    cli.py         `spinescope sweep ...`
"""
