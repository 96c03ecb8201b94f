"""Latency of the real model, measured in an isolated worker process, with progress, cancel and a history.

    request.py         LatencyRequest, run options and their checks, the device, the worker's payload
    errors.py          LatencyError: the one error a run raises, with a kind and a one-line message
    memory_guard.py    memory (and CPU time) estimated before a run; refusals
    worker_process.py  the worker subprocess from the caller's side: spawn, line protocol, time limit, kill
    worker.py          what runs inside the worker (`spinescope.latency.worker`): build, time, memory probe
    bn_fold.py         batch norm folded into convolutions (the worker's --fold-bn)
    results.py         LatencyResult and the pure functions that build it from the worker's messages
    job.py             LatencyJob (start, progress, cancel, wait, result), start_latency_job, run_latency
    history.py         the SQLite history, written by a job's caller (the CLI, the app), never by the job
    cli.py             the `latency` and `history` subcommands

The names below are the package's public interface; importing it does not import torch.
"""
from spinescope.analysis.latency.errors import LatencyError
from spinescope.analysis.latency.job import LatencyJob, Progress, run_latency, start_latency_job, wait_for
from spinescope.analysis.latency.request import LatencyRequest
from spinescope.analysis.latency.results import LatencyResult

__all__ = ["LatencyError", "LatencyJob", "LatencyRequest", "LatencyResult", "Progress", "run_latency",
           "start_latency_job", "wait_for"]
