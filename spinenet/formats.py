"""Reading and writing specs: JSON, YAML (safe, no anchors or tags) and the reference's tuple list.

Every reader takes untrusted text and raises `SpecError` with a one-line message on anything wrong;
none of them evaluates code.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import yaml

try:
    from yaml.cyaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None

from spinescope.spinenet.registry import family_of
from spinescope.spinenet.spec import STEM_IDS, Block, Spec, spec_to_dict
from spinescope.spinenet.validate import LIMITS, SpecError, check_spec, parse_spec, printable

MAX_SPEC_BYTES = 1 << 20
FORMATS = ("json", "yaml", "tuples")
SPEC_DIR = Path(__file__).resolve().parent.parent / "assets" / "specs"  # the built-ins' files (spinenet.builtins)
TUPLE_BASE = "spinenet-49"  # the built-in whose scaling a tuple list takes when it is given none


# What a spec can need, with a wide margin (64 blocks of 5 fields are about 1,000 YAML nodes, nested 5 deep); beyond
# that a file is refused while it is being read, before the parser's cost can grow with it.
MAX_YAML_NODES = 5_000
MAX_NESTING = 20
MAX_NUMBER_CHARS = 40  # longer integers or floats are refused before they are converted (no 10^4000, no 1:2:3:...)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictChecks:
    """Composer and constructor hooks of a SafeLoader that refuses anchors and aliases (a tiny file cannot expand into a huge document), explicit tags
    (`!!int`, `!!python/...`, `!foo`), merge keys (`<<`), duplicate keys at any depth, numbers longer than
    MAX_NUMBER_CHARS, nesting deeper than MAX_NESTING and more than MAX_YAML_NODES values. The checks run while the
    text is composed, node by node, so a hostile file is refused after reading only as much as a spec could need."""

    _depth = 0
    _nodes = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases (*name) are not allowed in spec files")
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise yaml.YAMLError("YAML anchors (&name) are not allowed in spec files")
        tag = getattr(event, "tag", None)
        if tag is not None:
            shown = "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag
            raise yaml.YAMLError(f"YAML tags ({printable(shown)[:40]}) are not allowed in spec files"
                                 f"{_where(event)}")
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise yaml.YAMLError(f"more than {MAX_YAML_NODES:,} values{_where(event)}; a spec needs far fewer "
                                 f"(at most {LIMITS['max_blocks']} blocks)")
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise yaml.YAMLError(f"nested more than {MAX_NESTING} levels deep{_where(event)}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    raise yaml.YAMLError(f"YAML merge keys (<<) are not allowed in spec files{_where(key_node)}")
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    raise yaml.YAMLError(f"a mapping key must be a plain value{_where(key_node)}") from None
                if duplicate:
                    raise yaml.YAMLError(f"duplicate key {_short(key)}{_where(key_node)}")
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        _check_number_length(node)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node):
        _check_number_length(node)
        return super().construct_yaml_float(node)


class _StrictPureLoader(_StrictChecks, yaml.SafeLoader):
    """The checks on PyYAML's pure-Python safe loader."""


if _CParser is not None:
    class _StrictSafeLoader(_StrictChecks, yaml.composer.Composer, _CParser, yaml.constructor.SafeConstructor,
                            yaml.resolver.Resolver):
        """The checks on libyaml's parser (C, about 50x faster at scanning than pure Python; 1 MB of blank lines or
        comments takes milliseconds instead of seconds); PyYAML's Python composer drives it event by event, so the
        hooks above see every node."""

        def __init__(self, stream):
            _CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
else:  # pragma: no cover - PyYAML built without libyaml
    _StrictSafeLoader = _StrictPureLoader

for _loader in {_StrictPureLoader, _StrictSafeLoader}:
    _loader.add_constructor("tag:yaml.org,2002:int", _StrictChecks.construct_yaml_int)
    _loader.add_constructor("tag:yaml.org,2002:float", _StrictChecks.construct_yaml_float)


def _where(item) -> str:
    mark = getattr(item, "start_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _short(value) -> str:
    text = ascii(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_number_length(node) -> None:
    if len(node.value) > MAX_NUMBER_CHARS:
        raise yaml.YAMLError(f"a number of {len(node.value):,} characters{_where(node)}; at most "
                             f"{MAX_NUMBER_CHARS} are allowed")


def _reject_constant(name):
    raise ValueError(f"{name} is not a valid number in a spec")


def _reject_long_number(text):
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text):,} characters; at most {MAX_NUMBER_CHARS} are allowed")
    return text


def _json_int(text):
    return int(_reject_long_number(text))


def _json_float(text):
    return float(_reject_long_number(text))


def _unique_pairs(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {_short(key)} (a key may appear only once in an object)")
        result[key] = value
    return result


def _parse_json(text: str):
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_json_int, parse_float=_json_float,
                          object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as error:
        raise SpecError([f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"]) from None
    except (ValueError, RecursionError) as error:
        raise SpecError([f"invalid JSON: {_first_line(error)}"]) from None


def _first_line(error) -> str:
    text = str(error).strip()
    return printable(text.splitlines()[0][:160]) if text else type(error).__name__


def _parse_yaml(text: str):
    try:
        return yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        hint = _quoting_hint(text, mark.line) if mark else ""
        raise SpecError([f"invalid YAML{where}: {printable(error.problem or error.context)}{hint}"]) from None
    except (yaml.YAMLError, ValueError, RecursionError, OverflowError) as error:
        raise SpecError([f"invalid YAML: {_first_line(error)}"]) from None


YAML_INDICATORS = "*&!@`%|>"  # a plain value may not start with these: YAML reads them as syntax


def _quoting_hint(text: str, line_index: int) -> str:
    """Returns "; text starting with '*' must be quoted" (or containing ': ') when the value on the error's line
    is unquoted text that YAML reads as syntax, else ""."""
    lines = text.splitlines()
    line = lines[line_index] if line_index < len(lines) else ""
    value = line.split(": ", 1)[1].strip() if ": " in line else ""
    if value and value[0] in YAML_INDICATORS:
        return f"; text starting with {value[0]!r} must be quoted"
    if ": " in value and value[:1] not in "\"'[{":
        return "; text containing ': ' must be quoted"
    return ""


# Numbers have at most 6 digits here: a longer one does not match and is reported, never converted.
_TUPLE = re.compile(r"\(\s*(-?[0-9]{1,6})\s*,\s*(['\"])([A-Za-z_]{1,32})\2\s*,\s*\(\s*(-?[0-9]{1,6})\s*,\s*(-?[0-9]{1,6})\s*\)\s*,"
                    r"\s*(True|False)\s*,?\s*\)")


# The scalings a bare tuple list can be given (the paper's SpineNet sizes); an app may offer the open spec's too.
TUPLE_SCALINGS = ("spinenet-49s", "spinenet-49", "spinenet-96", "spinenet-143", "spinenet-190")


@dataclass(frozen=True)
class TupleImport:
    """A spec read from text (a tuple list made into a spec, or a spec file): the spec and one line per thing the
    reader changed or chose (for the user)."""

    spec: Spec
    notes: tuple[str, ...] = ()


def parse_tuples(text: str, base: Spec, min_level: int | None = None) -> Spec:
    """Returns `base` with its blocks replaced by the reference tuple list in `text` (name and scaling from `base`;
    see `read_tuples`).

    The text is `[(level, 'block_fn', (offset0, offset1), is_output), ...]`, optionally as `NAME = [...]`,
    with `#` comments. Offsets index `[stem0, stem1, block2, ...]`; blocks get ids `b2`, `b3`, ... It is
    matched by a regular expression, never evaluated.
    """
    return read_tuples(text, base, min_level).spec


def tuple_base(base: Spec, min_level: int | None) -> Spec:
    """Returns `base` with its lowest output level set to `min_level` (None: unchanged), the levels a tuple list is
    read with. Raises SpecError (one line naming the value) unless 2 <= min_level <= base.max_level."""
    if min_level is None:
        return base
    if not isinstance(min_level, int) or isinstance(min_level, bool) or not 2 <= min_level <= base.max_level:
        raise SpecError([f"tuple list: min level must be an integer from 2 to {base.max_level} (the max level), "
                         f"got {_short(min_level)}"])
    return replace(base, min_level=min_level)


def read_tuples(text: str, base: Spec, min_level: int | None = None) -> TupleImport:
    """Returns the spec of the tuple list in `text` on `base` (its family, scaling, levels, head and name; its
    min_level replaced by `min_level` when given), with notes. An output flag at a level below min_level (the
    current Model Garden's 16th block, `(2, 'bottleneck', (2, 13), True)`, with min_level 3) is dropped, as the
    reference does: the block is kept and built but gets no endpoint; the notes say so. With min_level 2 that
    block is P2; a list without a level-2 output is refused with min_level 2 (one line saying so)."""
    blocks = _tuple_blocks(text)
    base = tuple_base(base, min_level)
    notes = []
    for index, block in enumerate(blocks):
        if block.is_output and not base.min_level <= block.level <= base.max_level:
            blocks[index] = replace(block, is_output=False)
            notes.append(f"entry {index + 1} ({block.id}, level {block.level}) is an output in the list, but this "
                         f"spec's outputs are P{base.min_level}-P{base.max_level}: kept as a block without an endpoint, as "
                         f"the reference does with min_level {base.min_level} (it feeds nothing, so it counts its "
                         "params and 0 MACs; choose min level 2 to make it P2)")
    output_levels = {block.level for block in blocks if block.is_output}
    missing = [level for level in range(base.min_level, base.max_level + 1) if level not in output_levels]
    if missing and missing[0] < 3:
        raise SpecError([f"tuple list: min level {base.min_level} needs an output at level {missing[0]} "
                         f"(P{missing[0]}) and no entry is one (the current Model Garden's list ends with "
                         f"(2, 'bottleneck', (2, 13), True)); use min level 3"])
    return TupleImport(check_spec(base.with_blocks(blocks)), tuple(notes))


def import_tuples(text: str, scaling: Spec, source: str | None = None, min_level: int | None = None) -> TupleImport:
    """Returns a bare tuple list as a new spec with the scaling (family, widths, repeats, input size, head) of the
    spec `scaling` and output levels P<min_level>-P<max_level> (min_level None: the scaling spec's), named after
    what it is, with notes that say what was applied. For an app's import, where the list must not silently take
    the open spec's name."""
    result = read_tuples(text, scaling, min_level)
    spec = result.spec
    sc = spec.scaling
    name = f"Tuple list ({scaling.name} scaling)"
    if len(name) > LIMITS["max_name_length"]:
        name = "Tuple list (imported)"
    spec = check_spec(replace(spec, name=name))
    applied = (f"{len(spec.blocks)} blocks{' from ' + source if source else ''} with the scaling of {scaling.name} "
               f"(endpoint filters {sc.endpoints_num_filters}, filter size scale {sc.filter_size_scale:g}, "
               f"resample alpha {sc.resample_alpha:g}, block repeats {sc.block_repeats}; input {spec.input_size} px), "
               f"outputs P{spec.min_level}-P{spec.max_level}, named \"{name}\"")
    return TupleImport(spec, (applied,) + result.notes)


def _tuple_blocks(text: str) -> list[Block]:
    body = "\n".join(line.split("#", 1)[0] for line in text.splitlines()).strip()
    body = re.sub(r"^[A-Za-z_][A-Za-z0-9_]*\s*=\s*", "", body)
    if not (body.startswith("[") and body.endswith("]")):
        raise SpecError(["tuple list: must be a list '[(level, block_fn, (in0, in1), is_output), ...]'"])
    inner = body[1:-1].strip().rstrip(",")
    blocks, position = [], 0
    while position < len(inner):
        match = _TUPLE.match(inner, position)
        if not match:
            digit = next((char for char in inner[position:position + 200]
                          if char.isdigit() and not "0" <= char <= "9"), None)
            if digit is not None:
                raise SpecError([f"tuple list: entry {len(blocks) + 1} has the digit {ascii(digit)}; write numbers "
                                 "with the ASCII digits 0-9"])
            long_number = re.search(r"[0-9]{7,}", inner[position:position + 200])
            if long_number:
                raise SpecError([f"tuple list: entry {len(blocks) + 1} has a number of more than 6 digits "
                                 f"({long_number.group()[:12]}...); levels and offsets are small integers"])
            snippet = inner[position:position + 40].splitlines()[0] if inner[position:] else ""
            raise SpecError([f"tuple list: entry {len(blocks) + 1} is not (level, 'block_fn', (in0, in1), is_output): "
                             f"{snippet!r}"])
        if len(blocks) >= LIMITS["max_blocks"]:
            raise SpecError([f"tuple list: more than the limit of {LIMITS['max_blocks']} blocks"])
        level, _, block_fn, in0, in1, is_output = match.groups()
        index = len(blocks) + len(STEM_IDS)
        ids = [_offset_id(int(offset), index, len(blocks)) for offset in (in0, in1)]
        blocks.append(Block(id=f"b{index}", level=int(level), block_fn=block_fn, parents=tuple(ids),
                            is_output=is_output == "True"))
        position = _skip_separator(inner, match.end(), len(blocks))
    if not blocks:
        raise SpecError(["tuple list: the list is empty"])
    return blocks


def _skip_separator(inner: str, position: int, entry: int) -> int:
    """Returns the position after the comma that must follow entry number `entry` (counted from 1; or the end of
    the list)."""
    rest = inner[position:].lstrip()
    if not rest:
        return len(inner)
    if not rest.startswith(","):
        raise SpecError([f"tuple list: unexpected text after entry {entry} (a comma or the end of the list "
                         f"must follow): {rest[:30]!r}"])
    return len(inner) - len(rest[1:].lstrip())


def _offset_id(offset: int, index: int, entry: int) -> str:
    if offset < 0 or offset >= index:
        raise SpecError([f"tuple list: entry {entry + 1} has input offset {offset}; it must index an earlier block "
                         f"(0..{index - 1})"])
    return STEM_IDS[offset] if offset < len(STEM_IDS) else f"b{offset}"


def dumps_tuples(spec: Spec) -> str:
    """Returns the blocks as the reference's tuple list (offsets index [stem0, stem1, blocks...])."""
    index = {block_id: i for i, block_id in enumerate(STEM_IDS + spec.block_ids)}
    lines = [f"    ({b.level}, '{b.block_fn}', ({index[b.parents[0]]}, {index[b.parents[1]]}), {b.is_output}),"
             for b in spec.blocks]
    return "[\n" + "\n".join(lines) + "\n]\n"


def dumps_json(spec: Spec) -> str:
    """Returns the spec as indented JSON text."""
    return json.dumps(spec_to_dict(spec), indent=2) + "\n"


def dumps_yaml(spec: Spec) -> str:
    """Returns the spec as YAML text (block lists in flow style, one block a line)."""
    data = spec_to_dict(spec)
    blocks = data.pop("blocks", None)
    text = yaml.safe_dump(data, sort_keys=False)
    if blocks is not None:
        lines = [yaml.safe_dump(block, default_flow_style=True, sort_keys=False, width=1000).strip()
                 for block in blocks]
        text += "blocks:\n" + "".join(f"- {line}\n" for line in lines)
    return text


def dumps(spec: Spec, fmt: str) -> str:
    """Returns the spec as text in `fmt` (json, yaml or tuples)."""
    writers = {"json": dumps_json, "yaml": dumps_yaml, "tuples": dumps_tuples}
    if fmt not in writers:
        raise SpecError([f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}"])
    if fmt == "tuples" and not family_of(spec).has_blocks:
        raise SpecError([f"tuples: a {family_of(spec).title} spec has no block list to write as tuples"])
    return writers[fmt](spec)


_TUPLE_START = re.compile(r"([A-Za-z_][A-Za-z0-9_]*\s*=\s*\[|\[\s*[(\]])")


def detect_format(text: str) -> str:
    """Returns 'json', 'tuples' or 'yaml' from the text's first characters. A tuple list is `[(`, `NAME = [` or an
    empty `[]`, with `#` comments anywhere (also right after `[`); JSON has no comments."""
    stripped = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")).lstrip()
    if stripped.startswith("{"):
        return "json"
    uncommented = "\n".join(line.split("#", 1)[0] for line in stripped[:2000].splitlines()).lstrip()
    if _TUPLE_START.match(uncommented):
        return "tuples"
    if stripped.startswith("["):
        return "json"
    return "yaml"


def loads(text: str | bytes, fmt: str | None = None, base: Spec | None = None) -> Spec:
    """Returns the Spec in `text` (format detected when `fmt` is None); tuple lists take their scaling from
    `base`. Raises SpecError with a one-line message for anything that is not a valid spec."""
    return read(text, fmt, base).spec


def read(text: str | bytes, fmt: str | None = None, base: Spec | None = None,
         min_level: int | None = None) -> TupleImport:
    """Returns the Spec in `text` with notes for the user (format detected when `fmt` is None). A tuple list takes
    its scaling from `base` (default SpineNet-49) and its output levels from `min_level` (see `read_tuples`); a JSON
    or YAML spec with `min_level` given gets that min_level as the editor sets it (`spinenet.edits.set_min_level`).
    Raises SpecError with a one-line message for anything that is not a valid spec."""
    text = spec_text(text)
    fmt = fmt or detect_format(text)
    if fmt == "tuples":
        return read_tuples(text, base or default_tuple_base(), min_level)
    if fmt not in ("json", "yaml"):
        raise SpecError([f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}"])
    data = _parse_json(text) if fmt == "json" else _parse_yaml(text)
    spec = parse_spec(data)
    if min_level is None or min_level == spec.min_level:
        return TupleImport(spec)
    from spinescope.spinenet.edits import min_level_change_note, set_min_level

    changed = set_min_level(spec, min_level)
    return TupleImport(changed, (min_level_change_note(spec, changed),))


@lru_cache(maxsize=1)
def default_tuple_base() -> Spec:
    """Returns the Spec whose scaling a tuple list takes when it is given none: the built-in TUPLE_BASE."""
    return load_spec_file(SPEC_DIR / f"{TUPLE_BASE}.yaml")


def spec_text(text: str | bytes) -> str:
    """Returns the text of a spec file or paste, checked before any parser sees it: at most MAX_SPEC_BYTES, UTF-8,
    no NUL bytes, not empty. Raises SpecError."""
    if isinstance(text, bytes):
        if len(text) > MAX_SPEC_BYTES:
            raise SpecError([f"file is {len(text):,} bytes, over the {MAX_SPEC_BYTES:,}-byte limit for a spec"])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise SpecError(["file is not UTF-8 text (binary data?)"]) from None
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError([f"text is {len(text):,} characters, over the {MAX_SPEC_BYTES:,} limit for a spec"])
    if "\x00" in text:
        raise SpecError(["file contains NUL bytes (binary data?)"])
    if not text.strip():
        raise SpecError(["the spec is empty"])
    return text


def read_spec_bytes(path: str | Path) -> bytes:
    """Returns the bytes of the spec file at `path`, checking its size before reading it and reading at most one
    byte more than the limit (a growing file or a device cannot make it read more). Raises SpecError."""
    path = Path(path)
    try:
        if not path.is_file():
            raise SpecError([f"{path}: no such file"])
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError([f"file is {size:,} bytes, over the {MAX_SPEC_BYTES:,}-byte limit for a spec"])
        with path.open("rb") as handle:
            data = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as error:
        raise SpecError([f"{path}: cannot read ({error.strerror})"]) from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError([f"file is over the {MAX_SPEC_BYTES:,}-byte limit for a spec"])
    return data


def load_spec_file(path: str | Path, base: Spec | None = None) -> Spec:
    """Returns the Spec in a .json/.yaml/.yml/.txt/.py file; raises SpecError naming the problem."""
    return read_spec_file(path, base).spec


def read_spec_file(path: str | Path, base: Spec | None = None, min_level: int | None = None) -> TupleImport:
    """Returns the Spec in a .json/.yaml/.yml/.txt/.py file with notes for the user (`min_level`: see `read`);
    raises SpecError naming the problem."""
    path = Path(path)
    suffix = path.suffix.lower()
    fmt = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".txt": None, ".py": "tuples"}.get(suffix, "unknown")
    if fmt == "unknown":
        raise SpecError([f"{path.name}: unknown file type '{suffix}'; use .json, .yaml, .yml or .txt (tuple list)"])
    return read(read_spec_bytes(path), fmt, base, min_level)
