"""Validation of untrusted spec data: one line per problem, naming the block and the field.

`find_problems(data)` never raises on any input; `parse_spec(data)` returns a `Spec` or raises `SpecError`.
The size limits keep a hostile file from exhausting memory or time when a model is later built from it.
"""
from __future__ import annotations

import math
import re

from spinescope.spinenet.blocks import BLOCK_TYPES
from spinescope.spinenet.registry import families
from spinescope.spinenet.spec import ACTIVATIONS, SEMANTICS, STEM_IDS, Spec, spec_from_dict, spec_to_dict

LIMITS = {
    "max_blocks": 64,
    "max_block_repeats": 8,
    "min_input_size": 32,
    "max_input_size": 2048,
    "max_endpoints_num_filters": 2048,
    "filter_size_scale": (0.25, 4.0),
    "resample_alpha": (0.25, 2.0),
    "max_stage_blocks": 64,
    "max_head_convs": 16,
    "max_num_classes": 10000,
    "max_num_anchors": 100,
    "max_name_length": 100,
}
MIN_LEVEL, MAX_LEVEL = 1, 7
# Block ids are plain ASCII, so two ids never print alike; \Z (not $, which also matches before a final newline).
BLOCK_ID_PATTERN = re.compile(r"\A[A-Za-z0-9_-]{1,32}\Z")

TOP_FIELDS = {"name", "family", "input_size", "min_level", "max_level", "activation", "head", "semantics"}
# The families whose operators Model Garden semantics changes (docs/spinenet-facts.md, section 14).
MODEL_GARDEN_FAMILIES = ("spinenet", "spinenet_mobile")
SCALING_FIELDS = ("endpoints_num_filters", "filter_size_scale", "resample_alpha", "block_repeats")
BLOCK_FIELDS = {"id", "level", "block_fn", "parents", "is_output"}
HEAD_FIELDS = {"num_convs", "width", "separable", "num_classes", "num_anchors"}


def printable(text) -> str:
    """Returns `text` with every character that cannot be printed (control characters, ANSI escapes, newlines, lone
    surrogates, format characters) written as its Python escape (\\n, \\x1b, \\ud800): safe for any terminal,
    page or encoding, and on one line."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def text_problem(where: str, value: str) -> str | None:
    """Returns a one-line problem when the string `value` holds a character that cannot be printed, else None."""
    if value.isprintable():
        return None
    position, char = next((i, c) for i, c in enumerate(value) if not c.isprintable())
    return (f"{where}: contains a character that cannot be printed ({ascii(char)} at position {position}) in "
            f"{describe_value(value)}")


class SpecError(ValueError):
    """An invalid spec or spec file. `problems` holds one line per problem (any character that cannot be printed
    is escaped, so a message is always one printable line)."""

    def __init__(self, problems):
        self.problems = [printable(problem) for problem in problems]
        super().__init__(self.problems[0] if len(self.problems) == 1 else
                         f"{self.problems[0]} (and {len(self.problems) - 1} more problem(s))")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def describe_value(value) -> str:
    """Returns the value as a short ASCII Python literal: strings quoted, every character outside ASCII escaped, so
    that nothing unprintable reaches a terminal and look-alikes ('b\\u0441' for 'bс') are told apart."""
    text = ascii(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_int(problems, where, value, low, high):
    if not _is_int(value):
        problems.append(f"{where}: must be an integer, got {describe_value(value)}")
    elif not low <= value <= high:
        problems.append(f"{where}: {value} is out of range [{low}, {high}]")


def _check_number(problems, where, value, low, high):
    if not _is_number(value):
        problems.append(f"{where}: must be a finite number, got {describe_value(value)}")
    elif not low <= value <= high:
        problems.append(f"{where}: {value} is out of range [{low}, {high}]")


def _check_fields(problems, where, data, allowed):
    for key in data:
        if key not in allowed:
            problems.append(f"{where}: unknown field {describe_value(key)} (allowed: {', '.join(sorted(allowed))})")


def find_problems(data) -> list[str]:
    """Returns every problem of the spec data (a dict as loaded from JSON/YAML), one line each; [] if valid."""
    if not isinstance(data, dict):
        return [f"spec: must be a mapping of fields, got {type(data).__name__}"]
    problems: list[str] = []
    family = families().get(data.get("family")) if isinstance(data.get("family"), str) else None
    if family is None:
        problems.append(f"family: must be one of {', '.join(families())}, got {describe_value(data.get('family'))}")
        return problems
    _check_fields(problems, "spec", data, TOP_FIELDS | family.fields)

    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"name: must be a non-empty string, got {describe_value(name)}")
    elif len(name) > LIMITS["max_name_length"]:
        problems.append(f"name: longer than {LIMITS['max_name_length']} characters")
    elif text_problem("name", name):
        problems.append(text_problem("name", name))
    if "input_size" in data:
        check_int(problems, "input_size", data["input_size"], LIMITS["min_input_size"], LIMITS["max_input_size"])
    if data.get("activation", "relu") not in ACTIVATIONS:
        problems.append(f"activation: must be one of {', '.join(ACTIVATIONS)}, got {describe_value(data['activation'])}")
    semantics = data.get("semantics", SEMANTICS[0])
    if semantics not in SEMANTICS:
        problems.append(f"semantics: must be one of {', '.join(SEMANTICS)}, got {describe_value(semantics)}")
    elif semantics == "model_garden" and family.name not in MODEL_GARDEN_FAMILIES:
        problems.append(f"semantics: model_garden applies to {' and '.join(MODEL_GARDEN_FAMILIES)} only, not "
                        f"{family.name} (use reference)")

    min_level, max_level = data.get("min_level", 3), data.get("max_level", 7)
    check_int(problems, "min_level", min_level, 2, MAX_LEVEL)
    check_int(problems, "max_level", max_level, 2, MAX_LEVEL)
    levels_ok = _is_int(min_level) and _is_int(max_level) and 2 <= min_level <= max_level <= MAX_LEVEL
    if _is_int(min_level) and _is_int(max_level) and min_level > max_level:
        problems.append(f"min_level: {min_level} is above max_level {max_level}")

    endpoints = family.check(problems, data, min_level, max_level, levels_ok)  # the family's own fields
    _check_head(problems, data.get("head", {}), endpoints)
    return problems


def check_block_list(family_name, block_fns, problems, data, min_level, max_level, levels_ok):
    """The fields of a block-list family (`scaling` and `blocks`); returns the endpoint width (None if invalid)."""
    endpoints = _check_scaling(problems, data.get("scaling"))
    _check_blocks(problems, data.get("blocks"), family_name, block_fns, min_level, max_level, levels_ok)
    return endpoints


def _check_scaling(problems, scaling):
    if not isinstance(scaling, dict):
        problems.append(f"scaling: must be a mapping with {', '.join(SCALING_FIELDS)}, got {describe_value(scaling)}")
        return None
    _check_fields(problems, "scaling", scaling, set(SCALING_FIELDS))
    for key in SCALING_FIELDS:
        if key not in scaling:
            problems.append(f"scaling.{key}: missing")
    if "endpoints_num_filters" in scaling:
        check_int(problems, "scaling.endpoints_num_filters", scaling["endpoints_num_filters"], 1,
                   LIMITS["max_endpoints_num_filters"])
    for key in ("filter_size_scale", "resample_alpha"):
        if key in scaling:
            _check_number(problems, f"scaling.{key}", scaling[key], *LIMITS[key])
    if "block_repeats" in scaling:
        check_int(problems, "scaling.block_repeats", scaling["block_repeats"], 1, LIMITS["max_block_repeats"])
    return scaling.get("endpoints_num_filters")


def _check_blocks(problems, blocks, family, allowed_fns, min_level, max_level, levels_ok):
    if not isinstance(blocks, list):
        problems.append(f"blocks: must be a list of blocks, got {describe_value(blocks)}")
        return
    if not blocks:
        problems.append("blocks: the list is empty")
        return
    if len(blocks) > LIMITS["max_blocks"]:
        problems.append(f"blocks: {len(blocks)} blocks, more than the limit of {LIMITS['max_blocks']}")
        return
    known = list(STEM_IDS)
    outputs_by_level: dict[int, list[str]] = {}
    for index, block in enumerate(blocks):
        label = f"block {index + 1} in the list"
        if not isinstance(block, dict):
            problems.append(f"{label}: must be a mapping, got {describe_value(block)}")
            continue
        block_id = block.get("id")
        if isinstance(block_id, str) and BLOCK_ID_PATTERN.match(block_id):
            label = f"block '{block_id}'"
        _check_fields(problems, label, block, BLOCK_FIELDS)
        if not isinstance(block_id, str) or not BLOCK_ID_PATTERN.match(block_id):
            problems.append(f"{label}: id must be 1-32 letters, digits, '_' or '-', got {describe_value(block_id)}")
        elif block_id in STEM_IDS:
            problems.append(f"{label}: id '{block_id}' is reserved for the stem")
        elif block_id in known:
            problems.append(f"{label}: duplicate id '{block_id}'")
        check_int(problems, f"{label}: level", block.get("level"), MIN_LEVEL, MAX_LEVEL)
        block_fn = block.get("block_fn")
        if block_fn not in BLOCK_TYPES:
            problems.append(f"{label}: block_fn must be one of {', '.join(BLOCK_TYPES)}, got {describe_value(block_fn)}")
        elif block_fn not in allowed_fns:
            problems.append(f"{label}: block_fn '{block_fn}' is not used in family {family} "
                            f"(use {' or '.join(allowed_fns)})")
        _check_parents(problems, label, block.get("parents"), block_id, known)
        is_output = block.get("is_output", False)
        if not isinstance(is_output, bool):
            problems.append(f"{label}: is_output must be true or false, got {describe_value(is_output)}")
        elif is_output and _is_int(block.get("level")):
            outputs_by_level.setdefault(block["level"], []).append(label)
        if isinstance(block_id, str) and block_id not in known:
            known.append(block_id)
    if not levels_ok:
        return
    for level, labels in sorted(outputs_by_level.items()):
        if not min_level <= level <= max_level:
            problems.append(f"{labels[0]}: is_output at level {level}, outside the output levels "
                            f"P{min_level}-P{max_level}")
        elif len(labels) > 1:
            problems.append(f"outputs: level {level} has {len(labels)} output blocks ({', '.join(labels)}); "
                            "exactly one is needed")
    for level in range(min_level, max_level + 1):
        if level not in outputs_by_level:
            problems.append(f"outputs: no output block at level {level} (P{level}); exactly one is needed")


def _check_parents(problems, label, parents, block_id, known):
    if not isinstance(parents, list) or len(parents) != 2:
        problems.append(f"{label}: parents must be a list of two block ids, got {describe_value(parents)}")
        return
    for i, parent in enumerate(parents):
        if not isinstance(parent, str):
            problems.append(f"{label}: parents[{i}] must be a block id, got {describe_value(parent)}")
        elif parent == block_id:
            problems.append(f"{label}: parents[{i}] is the block itself")
        elif parent not in known:
            problems.append(f"{label}: parents[{i}] {describe_value(parent)} does not exist before this block "
                            "(a parent must come earlier)")
    if parents[0] == parents[1] and isinstance(parents[0], str):
        problems.append(f"{label}: both parents are {describe_value(parents[0])}; a block needs two different parents")


def _check_head(problems, head, endpoints):
    if not isinstance(head, dict):
        problems.append(f"head: must be a mapping, got {describe_value(head)}")
        return
    _check_fields(problems, "head", head, HEAD_FIELDS)
    check_int(problems, "head.num_convs", head.get("num_convs", 4), 0, LIMITS["max_head_convs"])
    # The subnets' width; it may differ from the endpoint width (the first conv goes endpoints -> width).
    # Default: the endpoint width (spinenet.spec.spec_from_dict).
    width = head.get("width", endpoints if _is_int(endpoints) else 256)
    check_int(problems, "head.width", width, 1, LIMITS["max_endpoints_num_filters"])
    if not isinstance(head.get("separable", False), bool):
        problems.append(f"head.separable: must be true or false, got {describe_value(head['separable'])}")
    check_int(problems, "head.num_classes", head.get("num_classes", 91), 1, LIMITS["max_num_classes"])
    check_int(problems, "head.num_anchors", head.get("num_anchors", 9), 1, LIMITS["max_num_anchors"])


def parse_spec(data) -> Spec:
    """Returns the Spec for untrusted data; raises SpecError listing every problem."""
    problems = find_problems(data)
    if problems:
        raise SpecError(problems)
    return spec_from_dict(data)


def check_spec(spec: Spec) -> Spec:
    """Returns `spec` unchanged if it is valid (e.g. after an edit); raises SpecError otherwise."""
    problems = find_problems(spec_to_dict(spec))
    if problems:
        raise SpecError(problems)
    return spec


def with_semantics(spec: Spec, semantics: str) -> Spec:
    """Returns `spec` with `semantics` ("reference" or "model_garden"); raises SpecError (one line) for another
    value or a family Model Garden semantics does not apply to."""
    from dataclasses import replace

    return check_spec(replace(spec, semantics=semantics))
