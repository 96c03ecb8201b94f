"""CLI: `spinescope latency SPEC [SPEC ...]` and `spinescope history`.

Exit status: 0 with figures; 2 for a bad argument or a run refused before it starts (memory guard); 1 when the
run itself failed (out of memory, worker crash, time-out). Every failure is one line on stderr.
"""
from __future__ import annotations

import argparse
import json
import sys

from spinescope.analysis.cli import INPUT_SIZE_HELP, CliError, input_size_arg, int_in_range, load_spec_argument
from spinescope.spinenet.input_size import non_ascii_digit_problem, size_label
from spinescope.spinenet.registry import head_names
from spinescope.spinenet.validate import printable

MIB = 2 ** 20


def _seconds(text: str) -> float:
    problem = non_ascii_digit_problem(text, "time limit")
    if problem:
        raise argparse.ArgumentTypeError(problem)
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"time limit must be a number of seconds, got {printable(repr(text[:60]))}") \
            from None
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"time limit {text} s is out of range (0, 86400]")
    return value


def register(subparsers) -> None:
    """Adds the `latency` and `history` subcommands."""
    from spinescope.analysis.latency.request import DEFAULT_ITERS, DEFAULT_TIMEOUT_S, DEFAULT_WARMUP, DEVICES, MAX_BATCH, \
        MAX_ITERS, PRECISIONS

    sub = subparsers.add_parser("latency", help="time the real model(s) in a worker process, interleaved")
    sub.add_argument("specs", nargs="+", metavar="SPEC", help="built-in name or spec path, optionally NAME@SIZE")
    sub.add_argument("--input-size", type=input_size_arg, help=INPUT_SIZE_HELP + " for every model "
                                                               "(default: NAME@SIZE or the spec's)")
    sub.add_argument("--batch", type=int_in_range(1, MAX_BATCH, "batch"), default=1, help="images per forward pass")
    sub.add_argument("--device", choices=DEVICES, default="auto", help="auto: a CUDA GPU when present, else CPU")
    sub.add_argument("--precision", choices=PRECISIONS, default="fp32",
                     help="fp32; fp16 (GPU) or bf16 run under autocast")
    sub.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    sub.add_argument("--fold-bn", action="store_true", help="fold batch norm into the preceding convolutions")
    sub.add_argument("--compile", action="store_true", help="torch.compile the model (compile time reported apart; "
                                                            "minutes on a CPU)")
    sub.add_argument("--threads", type=int_in_range(1, 1024, "threads"),
                     help="CPU threads (default: torch's, one per core)")
    sub.add_argument("--iters", type=int_in_range(1, MAX_ITERS, "iterations"), default=DEFAULT_ITERS,
                     help=f"timed forward passes per model (default {DEFAULT_ITERS})")
    sub.add_argument("--warmup", type=int_in_range(0, MAX_ITERS, "warm-up iterations"), default=DEFAULT_WARMUP,
                     help=f"untimed forward passes per model first (default {DEFAULT_WARMUP})")
    sub.add_argument("--head", choices=head_names(), default="none")
    sub.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT_S,
                     help=f"seconds for the whole run (default {DEFAULT_TIMEOUT_S:g})")
    sub.add_argument("--memory-limit-mib", type=int_in_range(1, 2 ** 31, "memory limit"),
                     help="refuse runs estimated to need more than this many MiB (default: "
                          "SPINESCOPE_MAX_MEMORY_MIB, else the device's free memory)")
    sub.add_argument("--per-block", action="store_true",
                     help="also time every block (resampling + block group), the stem, the endpoints and the head "
                          "inside the forward pass; each iteration runs one pass without and one with the hooks")
    sub.add_argument("--no-save", action="store_true", help="do not store the results in the history")
    sub.add_argument("--json", action="store_true", help="print a JSON list, one object per model")
    sub.set_defaults(handler=_cmd_latency)

    sub = subparsers.add_parser("history", help="latency results stored by earlier runs")
    sub.add_argument("--limit", type=int_in_range(1, 1_000_000, "limit"), default=20, help="newest N (default 20)")
    sub.add_argument("--spec", help="only results of this spec (built-in name or path; matched by content hash)")
    sub.add_argument("--compare", nargs="+", type=int_in_range(1, 2 ** 62, "id"), metavar="ID",
                     help="these stored results side by side, ratios to the first")
    sub.add_argument("--json", action="store_true", help="print a JSON list")
    sub.set_defaults(handler=_cmd_history)


def label_width(labels) -> int:
    """Returns the width (characters) of a table's model column: its longest label, so that none is cut."""
    return max([len("model"), *(len(label) for label in labels)])


def _progress_printer():
    """Returns an on_progress callback drawing one status line on an interactive stderr, else None."""
    if not sys.stderr.isatty():
        return None

    def show(progress) -> None:
        counts = f" {progress.done}/{progress.total}" if progress.total else ""
        model = f" {progress.model}" if progress.model else ""
        print(f"\r\033[K{progress.phase}{counts}{model}", end="", file=sys.stderr, flush=True)
        if progress.phase in ("done", "failed", "cancelled"):
            print("\r\033[K", end="", file=sys.stderr, flush=True)
    return show


def _cmd_latency(args) -> int:
    from spinescope.analysis.latency.errors import LatencyError
    from spinescope.analysis.latency.history import save_results
    from spinescope.analysis.latency.job import LatencyJob, wait_for
    from spinescope.analysis.latency.request import LatencyRequest

    requests = []
    for text in args.specs:
        spec, size = load_spec_argument(text)
        requests.append(LatencyRequest(spec, args.input_size or size, args.head, args.batch, args.precision,
                                       args.channels_last, args.fold_bn, args.compile))
    limit = args.memory_limit_mib * MIB if args.memory_limit_mib else None
    try:
        job = LatencyJob(requests, device=args.device, threads=args.threads, iters=args.iters,
                         warmup=args.warmup, timeout=args.timeout, memory_limit_bytes=limit,
                         per_block=args.per_block)
        job.start()
        results = wait_for(job, _progress_printer())
    except LatencyError as error:
        if error.kind in ("invalid", "memory", "time"):
            raise CliError(str(error)) from None
        print(f"error: {error}", file=sys.stderr)
        return 1
    history_warning = None
    if not args.no_save:  # the job stores nothing; this command, its caller, writes the history
        results, history_warning = save_results(results)
    if args.json:
        print(json.dumps([result.to_dict() for result in results], indent=2))
    else:
        print(format_latency(results))
    if history_warning:
        print(f"warning: {history_warning}", file=sys.stderr)
    return 0


def format_latency(results) -> str:
    """Returns a readable table of LatencyResult objects with units, and the settings they share."""
    first = results[0]
    model = label_width(r.label for r in results)
    lines = [
        f"device: {first.device.upper()} ({first.device_name}), {first.threads} thread(s); torch "
        f"{first.torch_version}; {first.iterations} timed passes per model after {first.warmup} warm-up, "
        "interleaved",
        f"{'model':{model}s} {'input':>9s} {'batch':>5s} {'precision':>9s} {'median ms':>10s} {'p10 ms':>9s} "
        f"{'p90 ms':>9s} {'mean ms':>9s} {'images/s':>9s} {'peak MiB':>9s} {'ratio':>6s}",
    ]
    for r in results:
        options = "".join(flag for flag, on in ((" CL", r.memory_format == "channels_last"), (" fold", r.fold_bn),
                                                (" compiled", r.compiled)) if on)
        lines.append(
            f"{r.label:{model}s} {size_label(r.input_size):>9s} {r.batch:5d} {r.precision:>9s} {r.median_ms:10.2f} "
            f"{r.p10_ms:9.2f} {r.p90_ms:9.2f} {r.mean_ms:9.2f} {r.throughput:9.1f} "
            f"{r.peak_memory_bytes / MIB:9.1f} {r.ratio_to_first:6.2f}{options}")
    compiled = [r for r in results if r.compile_s is not None]
    for r in compiled:
        lines.append(f"compile time {r.label}: {r.compile_s:.1f} s (not part of the timings)")
    lines.append("ratio = median / the first model's median, measured interleaved in the same run; peak MiB = "
                 "weights + growth during one forward pass")
    for r in results:
        if r.blocks:
            lines.append("")
            lines.append(format_blocks(r))
    saved = [r.history_id for r in results if r.history_id is not None]
    if saved:
        lines.append(f"saved to history as id {', '.join(map(str, saved))} (spinescope history)")
    return "\n".join(lines)


def format_blocks(result) -> str:
    """Returns the per-block table of one LatencyResult (run with per_block), with the sum check and the hooks'
    overhead."""
    lines = [f"per block: {result.label} ({result.iterations} hooked passes interleaved with the plain ones)",
             f"{'module':32s} {'node':>8s} {'median ms':>10s} {'p10 ms':>9s} {'p90 ms':>9s} {'share':>7s}"]
    for row in result.blocks:
        lines.append(f"{row['id'][:32]:32s} {(row['node'] or '-')[:8]:>8s} {row['median_ms']:10.3f} "
                     f"{row['p10_ms']:9.3f} {row['p90_ms']:9.3f} {100 * row['share']:6.1f}%")
    lines.append(f"sum of block medians {result.blocks_sum_ms:.2f} ms vs end-to-end median {result.median_ms:.2f} ms "
                 f"(no hooks): {100 * result.blocks_sum_diff:+.1f} %")
    lines.append(f"hooked passes: end-to-end median {result.hooked_median_ms:.2f} ms, "
                 f"{100 * result.hook_overhead:+.1f} % vs without hooks")
    return "\n".join(lines)


def _cmd_history(args) -> int:
    import sqlite3

    from spinescope.analysis.latency.history import history_path

    try:
        return _print_history(args)
    except sqlite3.DatabaseError as error:
        raise CliError(f"cannot read the history file {history_path()}: {error}") from None


def _print_history(args) -> int:
    from spinescope.analysis.latency.history import compare_results, history_path, list_results
    from spinescope.spinenet.spec import spec_hash

    if args.compare:
        try:
            rows = compare_results(args.compare)
        except KeyError as error:
            raise CliError(error.args[0]) from None
    else:
        wanted = spec_hash(load_spec_argument(args.spec)[0]) if args.spec else None
        skipped: list[str] = []
        rows = [entry.to_dict() for entry in list_results(args.limit, wanted, skipped=skipped)]
        for row in rows:
            row["differs"] = []
        if skipped:  # the other rows are shown; the damaged ones are named, on one line
            more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
            print(f"note: skipped {len(skipped)} damaged row(s) of {printable(history_path())}: "
                  f"{printable('; '.join(skipped[:3]))}{more}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no stored latency results in {history_path()}")
        return 0
    labels = [printable(row["label"]) for row in rows]  # stored text: control characters escaped
    model = label_width(labels)
    print(f"{'id':>5s} {'when (UTC)':19s} {'model':{model}s} {'hash':16s} {'input':>9s} {'batch':>5s} {'device':22s} "
          f"{'prec':4s} {'median ms':>10s} {'p10-p90 ms':>17s} {'images/s':>9s} {'peak MiB':>9s} {'ratio':>6s}")
    for row, label in zip(rows, labels):
        spread = f"{row['p10_ms']:.2f}-{row['p90_ms']:.2f}"
        note = f"  differs: {', '.join(row['differs'])}" if row["differs"] else ""
        device = f"{row['device']} {row['device_name']}"[:22]
        print(f"{row['id']:5d} {row['created_at'][:19]:19s} {label:{model}s} {row['spec_hash']:16s} "
              f"{row['input_size']!s:>9s} {row['batch']:5d} {device:22s} {row['precision']:4s} "
              f"{row['median_ms']:10.2f} {spread:>17s} {row['throughput']:9.1f} "
              f"{row['peak_memory_bytes'] / MIB:9.1f} {row['ratio_to_first']:6.2f}{note}")
    print("ratio: to the first model of the same run" + (" (here: to the first id given)" if args.compare else ""))
    return 0
