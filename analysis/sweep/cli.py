"""CLI: `spinescope sweep SPEC [SPEC ...] --input-size 512,640,1024 --batch 1,8 --precision fp32,bf16
[--per-block] [--ray ADDRESS] [--json]` and the latency command's other options: latency and the training-memory
estimate for every grid point, each stored in the history, one table (or one JSON object with `points`).

Local by default (one worker process on this machine); with `--ray ADDRESS` or SPINESCOPE_RAY, one Ray task per
point (see `analysis.sweep.ray_runner`). Exit status 0 when every point was measured, 1 when some failed (listed),
2 for a bad argument.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from spinescope.analysis.cli import CliError, int_in_range, load_spec_argument
from spinescope.spinenet.registry import head_names

MIB, GIB = 2 ** 20, 2 ** 30
RAY_VARIABLE = "SPINESCOPE_RAY"


def _grid_type(parse):
    def wrapped(text: str):
        from spinescope.analysis.sweep.grid import GridError

        try:
            return parse(text)
        except GridError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return wrapped


def register(subparsers) -> None:
    from spinescope.analysis.latency.cli import _seconds
    from spinescope.analysis.latency.request import DEFAULT_ITERS, DEFAULT_TIMEOUT_S, DEFAULT_WARMUP, DEVICES, MAX_ITERS
    from spinescope.analysis.memory.estimate import OPTIMIZERS
    from spinescope.analysis.sweep.grid import batches, input_sizes, precisions

    sub = subparsers.add_parser("sweep", help="latency and training memory over a grid of sizes, batches and "
                                              "precisions (locally, or on a Ray cluster)")
    sub.add_argument("specs", nargs="+", metavar="SPEC", help="built-in name or spec path, optionally NAME@SIZE")
    sub.add_argument("--input-size", type=_grid_type(input_sizes), help="comma list of input sizes (N square, or "
                                                                        "WIDTHxHEIGHT), e.g. 512,640,1333x800 "
                                                                        "(default: each spec's)")
    sub.add_argument("--batch", type=_grid_type(batches), default=[1], help="comma list, e.g. 1,8 (default 1)")
    sub.add_argument("--precision", type=_grid_type(precisions), default=["fp32"],
                     help="comma list of fp32, bf16, fp16 (default fp32)")
    sub.add_argument("--head", choices=head_names(), default="none")
    sub.add_argument("--device", choices=DEVICES, default="auto")
    sub.add_argument("--channels-last", action="store_true")
    sub.add_argument("--fold-bn", action="store_true")
    sub.add_argument("--threads", type=int_in_range(1, 1024, "threads"))
    sub.add_argument("--iters", type=int_in_range(1, MAX_ITERS, "iterations"), default=DEFAULT_ITERS)
    sub.add_argument("--warmup", type=int_in_range(0, MAX_ITERS, "warm-up iterations"), default=DEFAULT_WARMUP)
    sub.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT_S, help="seconds per point")
    sub.add_argument("--per-block", action="store_true", help="also time every block at every point")
    sub.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd", help="for the training-memory estimate")
    sub.add_argument("--ray", metavar="ADDRESS", default=os.environ.get("SPINESCOPE_RAY") or None,
                     help="run every point as a Ray task on this cluster ('auto', HOST:PORT of its head, "
                          "'ray://HOST:10001' with pip install 'ray[client]', or 'local' for a Ray instance on this "
                          "machine); checked and answering within 5 s, else one line; default SPINESCOPE_RAY, else "
                          "no Ray")
    sub.add_argument("--no-save", action="store_true", help="do not store the points in the history")
    sub.add_argument("--json", action="store_true", help="print one JSON object with `points`")
    sub.set_defaults(handler=_cmd_sweep)


def _cmd_sweep(args) -> int:
    from spinescope.analysis.latency.errors import LatencyError
    from spinescope.analysis.latency.job import LatencyJob
    from spinescope.analysis.latency.request import check_request, resolve_device
    from spinescope.analysis.sweep.grid import GridError, RunOptions, count_points, grid_points, request_for

    if args.ray:  # the address is checked before anything else (its connection is bounded, see ray_runner)
        from spinescope.analysis.sweep.ray_runner import RayAddressError, check_address

        try:
            check_address(args.ray)
        except RayAddressError as error:
            raise CliError(f"--ray (or {RAY_VARIABLE}): {error}") from None
    try:  # counted as a product before any spec is loaded or any point built
        count_points(len(args.specs), len(args.input_size or ()), len(args.batch), len(args.precision))
        specs = [(text, *load_spec_argument(text)) for text in args.specs]
        points = grid_points(specs, args.input_size, args.batch, args.precision)
    except GridError as error:
        raise CliError(str(error)) from None
    options = RunOptions(args.head, args.device, args.iters, args.warmup, args.threads, args.timeout,
                         args.channels_last, args.fold_bn, args.per_block, args.optimizer)
    try:  # every point's options are checked here, before anything runs (locally or on the cluster)
        device = resolve_device(args.device) if not args.ray else ("cuda" if args.device == "cuda" else "cpu")
        for point in points:
            check_request(request_for(point, options), device)
        if not args.ray:
            LatencyJob([request_for(p, options) for p in points], device=args.device, threads=args.threads,
                       iters=args.iters, warmup=args.warmup, timeout=args.timeout, per_block=args.per_block)
    except LatencyError as error:
        raise CliError(str(error)) from None
    if args.ray:
        from spinescope.analysis.sweep.ray_runner import RayClusterError, check_cluster, connect

        already = "ray" in sys.modules and sys.modules["ray"].is_initialized()
        try:  # connected (and the cluster checked) before anything is printed or submitted
            ray = connect(args.ray)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise CliError(_ray_problem(args.ray, error)) from None
        try:
            check_cluster(ray, args.device)
        except RayClusterError as error:
            if not already:
                ray.shutdown()
            raise CliError(_ray_problem(args.ray, error)) from None
    stream = None if args.json else (lambda record: print(_row(record), flush=True))
    if not args.json:
        print(f"sweep: {len(points)} point(s), " + (f"Ray at {args.ray}" if args.ray else "local worker process"))
        print(_header())
    try:
        if args.ray:
            from spinescope.analysis.sweep.ray_runner import run_on_ray

            try:
                records, failures, warning = run_on_ray(points, options, address=args.ray, on_point=stream,
                                                        save=not args.no_save)
            except (ConnectionError, RuntimeError) as error:
                raise CliError(_ray_problem(args.ray, error)) from None
        else:
            from spinescope.analysis.sweep.local import run_local

            records, failures, warning = run_local(points, options, on_point=stream, save=not args.no_save)
    except LatencyError as error:
        if error.kind in ("invalid", "memory", "time"):
            raise CliError(str(error)) from None
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"runner": "ray" if args.ray else "local", "points": records, "failed": failures,
                          "history_warning": warning}, indent=2))
    else:
        print(f"{len(records)} point(s) measured; latency medians interleaved within each run; train GiB = the "
              f"estimated peak of one training step ({args.optimizer})")
    for failure in failures:
        print(f"error: {failure['spec']}@{failure['input_size']} batch {failure['batch']} {failure['precision']}: "
              f"{failure['error']}", file=sys.stderr)
    if warning:  # the figures above are valid; what the command was also asked to do, store them, did not happen
        print(f"error: {warning}", file=sys.stderr)
    return 1 if failures or warning else 0


def _ray_problem(address: str, error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"cannot use the Ray cluster {ascii(address)}: {lines[0] if lines else type(error).__name__}"


def _header() -> str:
    return (f"{'spec':22s} {'input':>9s} {'batch':>5s} {'prec':4s} {'median ms':>10s} {'p10 ms':>9s} "
            f"{'p90 ms':>9s} {'images/s':>9s} {'infer MiB':>9s} {'train GiB':>9s} {'history':>7s}")


def _row(r: dict) -> str:
    return (f"{r['name'][:22]:22s} {r['input_size']!s:>9s} {r['batch']:5d} {r['precision']:4s} {r['median_ms']:10.2f} "
            f"{r['p10_ms']:9.2f} {r['p90_ms']:9.2f} {r['throughput']:9.1f} {r['peak_memory_bytes'] / MIB:9.1f} "
            f"{r['train_peak_bytes'] / GIB:9.2f} {r['history_id'] if r['history_id'] is not None else '-':>7}")
