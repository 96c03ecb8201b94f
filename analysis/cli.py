"""Command line: `spinescope {list,validate,analyze,paper,...}` (or `python -m spinescope ...`).

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

from spinescope.analysis.limits import ResourceLimitError
from spinescope.extras import MissingExtra
from spinescope.analysis.paths import DataDirError
from spinescope.analysis.architecture.classifier_input import summary
from spinescope.spinenet.builtins import SPEC_DIR, builtin_names, is_builtin, load_builtin
from spinescope.spinenet.file_names import file_name_problem, shown
from spinescope.spinenet.formats import read_spec_file
from spinescope.spinenet.input_size import InputSize, Side, non_ascii_digit_problem, parse_size, size_text, size_to_json
from spinescope.spinenet.registry import head_names
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.validate import LIMITS, SpecError, printable

# Modules (besides this one) that contribute subcommands through a `register(subparsers)` function.
COMMAND_MODULES: list[str] = ["spinescope.analysis.latency.cli", "spinescope.analysis.comparison.compare",
                              "spinescope.analysis.memory.cli", "spinescope.analysis.architecture.cli",
                              "spinescope.analysis.sweep.cli", "spinescope.cli", "spinescope.analysis.search.cli",
                              "spinescope.analysis.convert.cli", "spinescope.analysis.training.cli"]


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CliError(message)


def int_in_range(low: int, high: int, what: str):
    """Returns an argparse type that accepts integers in [low, high]; `what` names the value in its errors."""
    def parse(text: str) -> int:
        problem = non_ascii_digit_problem(text, what)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        if not re.fullmatch(r"\s*[-+]?[0-9]{1,40}\s*", text):  # ASCII digits, as every number read from text
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {printable(repr(text[:60]))}")
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} {value} is out of range [{low}, {high}]")
        return value
    return parse


def input_size_arg(text: str) -> InputSize:
    """argparse type for an input size within the spec limits: "640" (square) or "1333x800" (width x height)."""
    try:
        return parse_size(text, LIMITS["min_input_size"], LIMITS["max_input_size"])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


INPUT_SIZE_HELP = "input size in pixels: N (square) or WIDTHxHEIGHT such as 1333x800"


def check_spec_path(text: str) -> None:
    """Raises CliError (one line, the argument escaped and cut) when `text` cannot name a file on this system
    (`spinenet.file_names.file_name_problem`), where the operating system's OSError would end the command with a
    traceback."""
    problem = file_name_problem(text)
    if problem:
        hint = "" if problem.startswith("is too long") else "; give a built-in name or a file path"
        raise CliError(f"spec argument {shown(text)} {problem}{hint}")


def _is_file_path(text: str) -> bool:
    """Whether `text` names an existing file system entry; False for text that cannot be a path at all."""
    try:
        return Path(text).exists()
    except (OSError, ValueError):
        return False


def _has_size_suffix(text: str) -> bool:
    """Whether `text` is NAME@SIZE or PATH@SIZE: not itself a file, and the part before its last '@' is a built-in or
    a file, or the part after it a size. A bad size after a known spec is then refused as a size, not as a name."""
    name, at, size = text.rpartition("@")
    if not at or not name or _is_file_path(text):
        return False
    if re.fullmatch(r"\d+(?:[xX]\d+)?", size):
        return True
    try:
        return is_builtin(name) or _is_file_path(name)
    except OSError:  # a name too long for a file name; check_spec_path says so
        return False


def load_spec_argument(text: str, min_level: int | None = None,
                       notes: list | None = None) -> tuple[Spec, InputSize | None]:
    """Returns (spec, size) for 'NAME', 'PATH', 'NAME@SIZE' or 'PATH@SIZE' (SIZE: N or WxH); size is None without
    '@SIZE'. `min_level` (2..max_level) sets the lowest output level (see `spinenet.formats.read`); what the reader
    changed or chose is appended to `notes`, one line each, or printed on stderr without `notes`. Raises CliError
    with a one-line message."""
    size = None
    if _has_size_suffix(text):
        text, _, size_arg = text.rpartition("@")
        check_spec_path(text)
        try:
            if size_arg != size_arg.strip():  # one shell word: a quoted space is a typing slip, not a size
                raise argparse.ArgumentTypeError(f"input size {ascii(size_arg[:40])} has spaces; write N or "
                                                 "WIDTHxHEIGHT without them")
            size = input_size_arg(size_arg)
        except argparse.ArgumentTypeError as error:
            argument = f"{text}@{size_arg}"
            raise CliError(f"{ascii(argument[:80])[1:-1]}{'...' if len(argument) > 80 else ''}: {error}") from None
    check_spec_path(text)
    try:
        if is_builtin(text):
            spec, read_notes = load_builtin(text.lower()), ()
            if min_level is not None and min_level != spec.min_level:
                from spinescope.spinenet.edits import min_level_change_note, set_min_level

                changed = set_min_level(spec, min_level)
                spec, read_notes = changed, (min_level_change_note(spec, changed),)
        elif not Path(text).suffix:
            raise CliError(f"unknown built-in {text!r}; built-ins: {', '.join(builtin_names())} (or give a .json/.yaml "
                           "path)")
        else:
            result = read_spec_file(text, min_level=min_level)
            spec, read_notes = result.spec, result.notes
    except SpecError as error:
        raise CliError(f"{text}: {error}") from None
    if notes is None:
        _print_notes(read_notes)  # a command that does not collect them still says what the reader changed
    else:
        notes.extend(read_notes)
    return spec, size


def _print_notes(notes) -> None:
    for note in notes:
        print(f"note: {printable(note)}", file=sys.stderr)


def _cmd_list(args) -> int:
    for name in builtin_names():
        spec = load_builtin(name)
        print(f"{name:22s} {spec.name:22s} {spec.family:16s} input {spec.input_size}")
    return 0


def _cmd_validate(args) -> int:
    from spinescope.spinenet.formats import read, read_spec_bytes

    text = args.spec
    check_spec_path(text)
    # A built-in is validated like any file: its YAML in assets/specs/ goes through the same loader.
    path = SPEC_DIR / f"{text.lower()}.yaml" if is_builtin(text) else Path(text)
    try:
        if not path.is_file():
            raise SpecError([f"{text}: no such file (and not a built-in name)"])
        if path.suffix.lower() not in (".json", ".yaml", ".yml", ".txt", ".py"):
            raise SpecError([f"{path.name}: unknown file type '{path.suffix}'; use .json, .yaml, .yml or .txt"])
        fmt = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".py": "tuples"}.get(path.suffix.lower())
        result = read(read_spec_bytes(path), fmt, min_level=args.min_level)  # the size is checked before reading
    except SpecError as error:
        for problem in error.problems:
            print(f"{printable(path.name)}: {problem}", file=sys.stderr)
        return 2
    except OSError as error:
        raise CliError(f"{text}: cannot read ({error.strerror})") from None
    _print_notes(result.notes)
    print("ok" if result.spec.min_level == 3 else f"ok (outputs P{result.spec.min_level}-P{result.spec.max_level})")
    return 0


def _cmd_analyze(args) -> int:
    from spinescope.analysis.counting import analyze
    from spinescope.analysis.comparison.report import format_analysis

    notes: list[str] = []
    spec, size = load_spec_argument(args.spec, args.min_level, notes)
    if args.semantics:
        from spinescope.spinenet.validate import with_semantics

        spec = with_semantics(spec, args.semantics)
    _print_notes(notes)
    pooling = _pooling_argument(args)
    result = analyze(spec, args.input_size or size, args.head, pooling=pooling, counter=args.counter,
                     verify=args.verify)
    classifier = _classifier_inputs(spec, result.input_size, pooling) if args.head == "classification" else None
    if args.json:
        data = result.to_dict()
        if classifier:
            first, second = classifier
            data["classifier_input_length"] = first.length
            data["pooled_feature_map"] = list(first.pooled_map)
            data["classifier_input"] = {**first.to_dict(), "at_other_size": {
                "input_size": size_to_json(second.input_size), "pooled_map": list(second.pooled_map), "length": second.length}}
        if notes:
            data["notes"] = notes
        print(json.dumps(data, indent=2))
    else:
        print(format_analysis(result))
        if classifier:
            first, second = classifier
            c, h, w = first.pooled_map
            print(f"  classifier input ({first.pooling}): {c} channels x {first.bins} bins = {first.length:,} values at "
                  f"{size_text(first.input_size)} from a {c}x{h}x{w} map")
            print(f"  {summary(first, second)}")
            if first.bin_edges:
                print("  bins per pyramid level: " + "; ".join(first.bin_edges))
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


def _classifier_inputs(spec: Spec, size: Side, pooling: str):
    """Returns the classifier input (`analysis.architecture.classifier_input`) at `size` and at a second size."""
    from spinescope.analysis.architecture.classifier_input import classifier_input, other_size

    return classifier_input(spec, size, pooling), classifier_input(spec, other_size(size), pooling)


def _spp_levels_arg(text: str) -> tuple[int, ...]:
    from spinescope.spinenet.heads.classification import parse_levels

    try:
        return parse_levels(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_min_level(parser) -> None:
    parser.add_argument("--min-level", type=int_in_range(2, 7, "min level"), metavar="N",
                        help="lowest output level: 2 gives P2 (stride 4) from the level-2 output block, 3 (the "
                             "paper's) P3-P7. A tuple list's level-2 output is P2 with 2 and is kept without an "
                             "endpoint with 3, as the reference does; a spec's min_level is changed as the app's "
                             "editor does (raising it keeps the blocks, without endpoints)")


def _cmd_paper(args) -> int:
    from spinescope.analysis.comparison.report import paper_table

    print(paper_table())
    return 0


def _register_core(subparsers) -> None:
    sub = subparsers.add_parser("list", help="list the built-in architectures")
    sub.set_defaults(handler=_cmd_list)

    sub = subparsers.add_parser("validate", help="check a spec file; 'ok' or one line per problem")
    sub.add_argument("spec", help="path to a .json/.yaml spec or a .txt tuple list, or a built-in name")
    _add_min_level(sub)
    sub.set_defaults(handler=_cmd_validate)

    sub = subparsers.add_parser("analyze", help="params and MACs per block and in total")
    sub.add_argument("spec", help="built-in name or spec path, optionally NAME@SIZE")
    sub.add_argument("--input-size", type=input_size_arg, help=INPUT_SIZE_HELP + " (default: the spec's)")
    sub.add_argument("--head", choices=head_names(), default="none")
    _add_min_level(sub)
    sub.add_argument("--semantics", choices=("reference", "model_garden"),
                     help="the authors' TF1 code or TF2 Model Garden (default: the spec's; docs/spinenet-facts.md)")
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
    import spinescope

    parser = _Parser(prog="spinescope", description="SpineScope: analyze SpineNet and ResNet-FPN specs.")
    parser.add_argument("--version", action="version", version=f"spinescope {spinescope.__version__}")
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
    except (CliError, ResourceLimitError, SpecError, DataDirError, MissingExtra) as error:
        # printable(): a path or value from the user never reaches the terminal raw (no ANSI escapes, one line)
        print(f"error: {printable(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory; try a smaller --input-size", file=sys.stderr)
        return 2
