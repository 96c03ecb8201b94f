"""CLI: `spinescope memory SPEC [--head H] [--input-size N] [--batch B] [--optimizer sgd|adamw]
[--precision fp32|bf16|fp16] [--device cuda|cpu] [--fit 16GiB] [--json]`: the estimated peak memory of one
training step, split into weights, gradients, optimizer state and activations kept for backward (per block);
with --fit, the largest batch that fits at each input size for the spec and for ResNet-50-FPN, and memory vs
batch. Every bad argument is one line on stderr, exit status 2.
"""
from __future__ import annotations

import argparse
import json
import re

from spinescope.analysis import defaults
from spinescope.analysis.cli import INPUT_SIZE_HELP, CliError, input_size_arg, int_in_range, load_spec_argument
from spinescope.analysis.memory.fit import FIT_BATCHES, FIT_SIZES, MAX_BATCH, REFERENCE
from spinescope.spinenet.input_size import non_ascii_digit_problem
from spinescope.spinenet.registry import head_names
from spinescope.spinenet.validate import printable

MIB, GIB = 2 ** 20, 2 ** 30
UNITS = {"b": 1, "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9, "tb": 10 ** 12, "pb": 10 ** 15, "eb": 10 ** 18,
         "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40, "pib": 2 ** 50, "eib": 2 ** 60}
MAX_MEMORY_SIZE = 2 ** 60  # 1 EiB; the message's range and the units name the same bounds
_MEMORY_SIZE = re.compile(r"\s*([0-9]{1,20}(?:\.[0-9]{1,20})?(?:[eE][+-]?[0-9]{1,3})?)\s*([A-Za-z]{0,3})\s*")


def memory_size(text: str) -> int:
    """Parses '16GiB', '512 MiB', '8GB', '1e9B', '1EiB' or a plain number of bytes (ASCII digits); returns bytes
    in [1 B, 1 EiB] (argparse type)."""
    problem = non_ascii_digit_problem(text, "memory size")
    if problem:
        raise argparse.ArgumentTypeError(problem)
    match = _MEMORY_SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else None
    if match is None or (unit or "b") not in UNITS:
        raise argparse.ArgumentTypeError(f"cannot read {printable(repr(text[:60]))} as a memory size; use e.g. "
                                         "16GiB, 512MiB or 8GB (units B, kB-EB, KiB-EiB)")
    value = float(match.group(1)) * UNITS[unit or "b"]
    if not 1 <= value <= MAX_MEMORY_SIZE:
        raise argparse.ArgumentTypeError(f"memory size {printable(repr(text))} is out of range [1 B, 1 EiB]")
    return int(value)


def register(subparsers) -> None:
    from spinescope.analysis.memory.estimate import DEVICES, OPTIMIZERS, PRECISIONS

    sub = subparsers.add_parser("memory", help="estimated peak memory of one training step, and the largest batch "
                                               "that fits")
    sub.add_argument("spec", metavar="SPEC", help="built-in name or spec path, optionally NAME@SIZE")
    sub.add_argument("--head", choices=head_names(), default=defaults.HEAD,
                     help=f"the head trained with the backbone (default {defaults.HEAD}, as the app's)")
    sub.add_argument("--input-size", type=input_size_arg, help=INPUT_SIZE_HELP + " (default: NAME@SIZE "
                                                               "or the spec's)")
    sub.add_argument("--batch", type=int_in_range(1, MAX_BATCH, "batch"), default=defaults.TRAINING_BATCH,
                     help=f"images per step (default {defaults.TRAINING_BATCH})")
    sub.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.OPTIMIZER,
                     help=f"sgd (momentum) or adamw (default {defaults.OPTIMIZER})")
    sub.add_argument("--precision", choices=PRECISIONS, default=defaults.PRECISION,
                     help=f"fp32, or bf16/fp16 autocast (default {defaults.PRECISION})")
    sub.add_argument("--device", choices=DEVICES, default=defaults.TRAINING_DEVICE,
                     help="only AdamW's step temporaries differ (foreach on a GPU, per tensor on the CPU); "
                          f"default {defaults.TRAINING_DEVICE}")
    sub.add_argument("--fit", type=memory_size, metavar="SIZE",
                     help="memory budget such as 16GiB: print the largest batch that fits at each input size")
    sub.add_argument("--json", action="store_true", help="print one JSON object")
    sub.set_defaults(handler=_cmd_memory)


def _cmd_memory(args) -> int:
    from spinescope.analysis.memory.estimate import estimate_training_memory, max_batch
    from spinescope.analysis.memory.fit import fit_rows, memory_vs_batch

    spec, size = load_spec_argument(args.spec)
    size = args.input_size or size or spec.input_size
    options = dict(head=args.head, optimizer=args.optimizer, precision=args.precision, device=args.device)
    try:
        estimate = estimate_training_memory(spec, size, batch=args.batch, **options)
    except ValueError as error:
        raise CliError(str(error)) from None
    data = estimate.to_dict()
    if args.fit:
        data["fit_bytes"] = args.fit
        data["max_batch"] = max_batch(spec, args.fit, size, limit=MAX_BATCH, **options)
        data["fit"] = fit_rows(spec, args.fit, {*FIT_SIZES, size}, **options)
        data["memory_vs_batch"] = memory_vs_batch(spec, size, FIT_BATCHES, **options)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_memory(data))
    return 0


def format_memory(data: dict) -> str:
    """Returns the readable breakdown (MiB/GiB) of an estimate's dict, with the fit tables when present."""
    lines = [f"{data['spec_name']} + head {data['head']} at {data['input_size']} px, batch {data['batch']}, "
             f"{data['optimizer']}, {data['precision']}, {data['device']}: one training step (estimated from the "
             "structure, nothing allocated)",
             f"  weights            {data['weights_bytes'] / MIB:12,.1f} MiB  ({data['params']:,} params + buffers)",
             f"  gradients          {data['gradients_bytes'] / MIB:12,.1f} MiB",
             f"  optimizer state    {data['optimizer_bytes'] / MIB:12,.1f} MiB",
             f"  activations kept   {data['activations_bytes'] / MIB:12,.1f} MiB"
             + (f"  (autocast weight copies {data['autocast_copies_bytes'] / MIB:,.1f} MiB)"
                if data["autocast_copies_bytes"] else ""),
             f"  peak               {data['peak_bytes'] / MIB:12,.1f} MiB = {data['peak_bytes'] / GIB:.2f} GiB "
             f"(during the {data['peak_phase']}; transient {data['transient_bytes'] / MIB:,.1f} MiB)",
             "", f"  {'activations per block':34s} {'MiB':>10s} {'share':>7s} {'params':>12s}"]
    total = data["activations_bytes"] - data["autocast_copies_bytes"] or 1
    for row in data["blocks"]:
        lines.append(f"  {(row['id'] or '(model)')[:34]:34s} {row['activations_bytes'] / MIB:10,.1f} "
                     f"{100 * row['activations_bytes'] / total:6.1f}% {row['params']:12,d}")
    if "fit" in data:
        budget = data["fit_bytes"]
        lines += ["", f"largest batch that fits {budget / GIB:,.2f} GiB ({data['optimizer']}, {data['precision']}): "
                      f"{data['max_batch']} at {data['input_size']} px",
                  f"  {'input':>9s} {data['spec_name'][:20]:>20s} {'ResNet-50-FPN':>14s}"]
        for row in data["fit"]:
            lines.append(f"  {row['input_size']!s:>9s} {row['max_batch']:20d} {row[f'{REFERENCE}_max_batch']:14d}")
        lines += ["", f"memory vs batch at {data['input_size']} px (peak GiB)",
                  f"  {'batch':>6s} {data['spec_name'][:20]:>20s} {'ResNet-50-FPN':>14s}"]
        for row in data["memory_vs_batch"]:
            lines.append(f"  {row['batch']:6d} {row['peak_bytes'] / GIB:20.2f} "
                         f"{row[f'{REFERENCE}_peak_bytes'] / GIB:14.2f}")
    return "\n".join(lines)
