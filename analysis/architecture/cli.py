"""CLI: `spinescope whatif SPEC BLOCK [--input-size N|WxH] [--head H] [--json]`: what one block would cost
as each block type (`block_whatif`), with the seeds' worked examples of what 1x1 convolutions save."""
from __future__ import annotations

import json

from spinescope.analysis.cli import INPUT_SIZE_HELP, CliError, input_size_arg, load_spec_argument
from spinescope.spinenet.input_size import hw, size_label, size_to_json
from spinescope.spinenet.registry import head_names
from spinescope.spinenet.validate import printable


def register(subparsers) -> None:
    sub = subparsers.add_parser("whatif", help="one block as each block type, and what 1x1 convolutions save")
    sub.add_argument("spec", help="built-in name or spec path, optionally NAME@SIZE")
    sub.add_argument("block", help="a block id of the spec, e.g. b7")
    sub.add_argument("--input-size", type=input_size_arg, help=INPUT_SIZE_HELP + " (default: the spec's)")
    sub.add_argument("--head", choices=head_names(), default="none", help="head counted in the model deltas")
    sub.add_argument("--json", action="store_true", help="print one JSON object")
    sub.set_defaults(handler=_cmd_whatif)


def _cmd_whatif(args) -> int:
    from spinescope.analysis.architecture.block_whatif import block_whatif
    from spinescope.analysis.architecture.one_by_one import worked_examples

    spec, size = load_spec_argument(args.spec)
    size = args.input_size or size or spec.input_size
    try:
        whatif = block_whatif(spec, args.block, size, args.head)
    except KeyError as error:
        raise CliError(printable(str(error.args[0]))) from None
    examples = worked_examples()
    if args.json:
        print(json.dumps({**whatif.to_dict(), "size": size_to_json(whatif.size), "spec_name": spec.name,
                          "input_size": size_to_json(size), "worked_examples": [e.to_dict() for e in examples]},
                         indent=2))
        return 0
    print(format_whatif(spec.name, size, whatif, examples))
    return 0


def format_whatif(name: str, size, whatif, examples) -> str:
    """Returns the what-if as text: both views (MACs per output pixel too) and the worked examples."""
    height, width = hw(whatif.size)
    pixels = -(-height // whatif.stride) * -(-width // whatif.stride) * whatif.repeats  # output pixels, all repeats
    lines = [f"{name} at {size_label(size)} px: block {whatif.id} (L{whatif.level}, {whatif.block_fn}, "
             f"{whatif.repeats} repeat{'s' if whatif.repeats != 1 else ''}, input map {size_label(whatif.size)} px)"]

    def table(title, options, deltas):
        lines.extend(["", title, f"  {'type':11s} {'channels':>17s} {'params':>12s} {'MACs':>16s} "
                                 f"{'MACs/pixel':>12s}" + (f" {'model params Δ':>15s} {'model MACs Δ':>16s}"
                                                           if deltas else "")])
        for o in options:
            mark = " (current)" if o.current else ""
            row = (f"  {o.block_fn:11s} {f'{o.in_channels}->{o.width}->{o.out_channels}':>17s} {o.params:12,d} "
                   f"{o.macs:16,d} {o.macs // max(pixels, 1):12,d}")
            if deltas:
                row += (f" {o.model_params_delta:+15,d} {o.model_macs_delta:+16,d}" if o.model_macs_delta is not None
                        else f" {'not allowed':>15s} {'':>16s}")
            lines.append(row + mark)

    table("same input and output channels (what a bottleneck's 1x1 reductions save):", whatif.same_channels, False)
    if whatif.as_specified:
        table("retyped in the spec (the family's widths: 4C out for a bottleneck, C for a residual block):",
              whatif.as_specified, True)
    lines += ["", "the seeds' worked examples (reference page, section 13), counted by the same counter:"]
    for example in examples:
        lines.append(f"  {example.name}: {example.without:,} -> {example.with_reductions:,} {example.unit} with 1x1 "
                     f"reductions ({example.ratio:.1f}x fewer)")
    return "\n".join(lines)
