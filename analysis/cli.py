"""Command line: `python -m analysis {list,validate,analyze,paper} ...` from the repository root.

Every failure is one line on stderr and exit status 2 (bad argument, file or spec); never a traceback.
Each subcommand lives in a `register(subparsers)` function that sets `handler` on its parser; commands from other
modules are added to COMMAND_MODULES.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from pathlib import Path

from analysis.limits import ResourceLimitError
from analysis.paths import DataDirError
from spinenet.builtins import BUILTIN_NAMES, SPEC_DIR, load_builtin
from spinenet.formats import load_spec_file
from spinenet.registry import head_names
from spinenet.spec import Spec
from spinenet.validate import LIMITS, SpecError, printable

# Modules (besides this one) that contribute subcommands through a `register(subparsers)` function.
COMMAND_MODULES: list[str] = ["analysis.latency.cli", "analysis.comparison.compare",
                              "analysis.memory.cli",
                              "analysis.sweep.cli"]


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CliError(message)


def int_in_range(low: int, high: int, what: str):
    """Returns an argparse type that accepts integers in [low, high]; `what` names the value in its errors."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} {value} is out of range [{low}, {high}]")
        return value
    return parse


# argparse type for a square input side in pixels within the spec limits.
input_size_arg = int_in_range(LIMITS["min_input_size"], LIMITS["max_input_size"], "input size")


def load_spec_argument(text: str) -> tuple[Spec, int | None]:
    """Returns (spec, size) for 'NAME', 'PATH', 'NAME@SIZE' or 'PATH@SIZE'; size is None without '@SIZE'.
    Raises CliError with a one-line message."""
    size = None
    match = re.fullmatch(r"(.+)@(\d+)", text)
    if match and not Path(text).exists():
        text, size_text = match.groups()
        try:
            size = input_size_arg(size_text)
        except argparse.ArgumentTypeError as error:
            raise CliError(f"{text}@{size_text}: {error}") from None
    if text.lower() in BUILTIN_NAMES:
        return load_builtin(text.lower()), size
    if not Path(text).suffix:
        raise CliError(f"unknown built-in {text!r}; built-ins: {', '.join(BUILTIN_NAMES)} (or give a .json/.yaml path)")
    try:
        spec = load_spec_file(text)
    except SpecError as error:
        raise CliError(f"{text}: {error}") from None
    print_import_notes(Path(text))
    return spec, size


def print_import_notes(path: Path) -> None:
    """Prints to stderr, one line each, what reading a tuple-list file changed (as the app's import says): an
    output block at a level outside P3-P7, such as the current Model Garden's 16th block at level 2, is kept
    without an endpoint. Prints nothing for JSON/YAML or a list read as written."""
    from spinenet.formats import detect_format, read_spec_bytes, read_tuples, spec_text

    if path.suffix.lower() not in (".py", ".txt"):
        return
    try:
        text = spec_text(read_spec_bytes(path))
        if path.suffix.lower() == ".txt" and detect_format(text) != "tuples":
            return
        notes = read_tuples(text, load_builtin("spinenet-49")).notes  # the base `loads` gives a bare list
    except SpecError:
        return  # the load that came first reported it
    for note in notes:
        print(f"note: {printable(path.name)}: {printable(note)}", file=sys.stderr)


def _cmd_list(args) -> int:
    for name in BUILTIN_NAMES:
        spec = load_builtin(name)
        print(f"{name:22s} {spec.name:22s} {spec.family:16s} input {spec.input_size}")
    return 0


def _cmd_validate(args) -> int:
    from spinenet.formats import loads, read_spec_bytes

    text = args.spec
    # A built-in is validated like any file: its YAML in assets/specs/ goes through the same loader.
    path = SPEC_DIR / f"{text.lower()}.yaml" if text.lower() in BUILTIN_NAMES else Path(text)
    try:
        if not path.is_file():
            raise SpecError([f"{text}: no such file (and not a built-in name)"])
        if path.suffix.lower() not in (".json", ".yaml", ".yml", ".txt", ".py"):
            raise SpecError([f"{path.name}: unknown file type '{path.suffix}'; use .json, .yaml, .yml or .txt"])
        fmt = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".py": "tuples"}.get(path.suffix.lower())
        loads(read_spec_bytes(path), fmt)  # the size is checked before reading
        print_import_notes(path)
    except SpecError as error:
        for problem in error.problems:
            print(f"{printable(path.name)}: {problem}", file=sys.stderr)
        return 2
    except OSError as error:
        raise CliError(f"{text}: cannot read ({error.strerror})") from None
    print("ok")
    return 0


def _cmd_analyze(args) -> int:
    from analysis.counting import analyze
    from analysis.comparison.report import format_analysis

    spec, size = load_spec_argument(args.spec)
    pooling = _pooling_argument(args)
    result = analyze(spec, args.input_size or size, args.head, pooling=pooling, counter=args.counter,
                     verify=args.verify)
    classifier = _classifier_input(spec, result.input_size, pooling) if args.head == "classification" else None
    if args.json:
        data = result.to_dict()
        if classifier:
            data["classifier_input"] = classifier
        print(json.dumps(data, indent=2))
    else:
        print(format_analysis(result))
        if classifier:
            c, h, w = classifier["pooled_map"]
            print(f"  classifier input ({classifier['pooling']}): {c} channels x {classifier['bins']} bins = "
                  f"{classifier['length']:,} values at {result.input_size} px from a {c}x{h}x{w} map; the map grows "
                  "with the input size, the classifier input length does not")
            if classifier["levels"] != [1]:
                print("  bins per pyramid level: " + "; ".join(classifier["bin_edges"]))
    if result.verified is False:
        print("error: the fast and fvcore counts differ:", file=sys.stderr)
        for line in result.differences:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


def _pooling_argument(args) -> str:
    """Returns the classification head's pooling option ('gap', 'spp', 'spp:6,3,2,1', ...) from --pooling and
    --spp-levels; raises CliError (one line) when the levels are given without a pyramid pooling or another head."""
    if args.spp_levels is None:
        return args.pooling
    if args.pooling == "gap" or args.head != "classification":
        raise CliError("--spp-levels needs --head classification and --pooling spp or spp_avg")
    return f"{args.pooling}:{','.join(str(n) for n in args.spp_levels)}"


def _classifier_input(spec: Spec, size: int, pooling: str) -> dict:
    """The classification head's pooled map (channels, height, width) at `size`, its pyramid levels and the
    classifier's input length (channels x sum(n^2)), with the bin edges used at each level."""
    from spinenet.describe import describe
    from spinenet.heads.classification import classifier_inputs, parse_pooling, sppnet_window

    structure = describe(spec, size, "classification", pooling=pooling)
    pooled = next(iter(structure.features.values()))
    kind, levels = parse_pooling(pooling)
    edges = []
    side = pooled[1]
    for n in levels:
        window = sppnet_window(side, n)
        if window:
            edges.append(f"{n}x{n}: SPPNet window {window[0]}, stride {window[1]}")
        else:
            why = f"the {side} px map is smaller than {n}" if side < n else f"{side} mod {n} = {side % n}"
            edges.append(f"{n}x{n}: PyTorch's adaptive bins ({why}: SPPNet's windows would not tile it into {n} bins)")
    return {"pooling": kind, "levels": list(levels), "bins": sum(n * n for n in levels), "pooled_map": list(pooled),
            "length": classifier_inputs(pooled[0], pooling), "bin_edges": edges}


def _spp_levels_arg(text: str) -> tuple[int, ...]:
    from spinenet.heads.classification import parse_levels

    try:
        return parse_levels(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _cmd_paper(args) -> int:
    from analysis.comparison.report import paper_table

    print(paper_table())
    return 0


def _register_core(subparsers) -> None:
    sub = subparsers.add_parser("list", help="list the built-in architectures")
    sub.set_defaults(handler=_cmd_list)

    sub = subparsers.add_parser("validate", help="check a spec file; 'ok' or one line per problem")
    sub.add_argument("spec", help="path to a .json/.yaml spec or a .txt tuple list, or a built-in name")
    sub.set_defaults(handler=_cmd_validate)

    sub = subparsers.add_parser("analyze", help="params and MACs per block and in total")
    sub.add_argument("spec", help="built-in name or spec path, optionally NAME@SIZE")
    sub.add_argument("--input-size", type=input_size_arg, help="square input side in pixels (default: the spec's)")
    sub.add_argument("--head", choices=head_names(), default="none")
    sub.add_argument("--json", action="store_true", help="print one JSON object")
    sub.add_argument("--counter", choices=("fast", "fvcore"), default="fast",
                     help="fast: fvcore's numbers derived from shapes in milliseconds (default); fvcore: trace the "
                          "real model (seconds to minutes)")
    sub.add_argument("--verify", action="store_true",
                     help="also count with the other counter; exit 1 if any module's numbers differ")
    sub.add_argument("--pooling", choices=("gap", "spp", "spp_avg"), default="gap",
                     help="classification head: global average pooling, SPPNet's max-pooled pyramid, or its average "
                          "variant")
    sub.add_argument("--spp-levels", type=_spp_levels_arg, metavar="N,N,...",
                     help="pyramid levels of spp/spp_avg (default 4,2,1, SPPNet's; 6,3,2,1 its detection pyramid)")
    sub.set_defaults(handler=_cmd_analyze)

    sub = subparsers.add_parser("paper", help="Markdown table: measured vs published figures of the paper models")
    sub.set_defaults(handler=_cmd_paper)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m analysis", description="SpineScope: analyze SpineNet and ResNet-FPN specs.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _register_core(subparsers)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 ok, 1 a check failed, 2 bad input)."""
    try:
        args = build_parser().parse_args(argv)
        status = args.handler(args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:  # e.g. `... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CliError, ResourceLimitError, SpecError, DataDirError) as error:
        # printable(): a path or value from the user never reaches the terminal raw (no ANSI escapes, one line)
        print(f"error: {printable(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory; try a smaller --input-size", file=sys.stderr)
        return 2
