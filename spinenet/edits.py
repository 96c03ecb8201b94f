"""Edit operations on a Spec, an undo/redo history of accepted specs, and the diff between two specs.

Every edit is a pure function `edit(spec, ...) -> Spec`: it returns a new, validated Spec or raises `SpecError`
whose message is one line saying what is wrong (the spec passed in is never changed; Specs are immutable).
`EditHistory` keeps the accepted specs with a description of each edit; `diff_specs` says how two specs differ.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from spinescope.spinenet.registry import family_of
from spinescope.spinenet.spec import SEMANTICS, STEM_IDS, Block, Spec, spec_to_dict
from spinescope.spinenet.validate import LIMITS, MAX_LEVEL, MIN_LEVEL, SpecError, check_spec, describe_value, parse_spec

_NUMBERED_ID = re.compile(r"^b(\d+)$")


def _fail(message: str):
    raise SpecError([message])


def _block_index(spec: Spec, block_id: str) -> int:
    if not family_of(spec).has_blocks:
        _fail(f"{spec.name} is a {family_of(spec).title} spec: it has stages, not editable blocks")
    for index, block in enumerate(spec.blocks):
        if block.id == block_id:
            return index
    if block_id in STEM_IDS:
        _fail(f"'{block_id}' is a stem block: the stem is fixed and cannot be edited")
    _fail(f"no block '{str(block_id)[:32]}' in {spec.name}")


def _replace_block(spec: Spec, index: int, **changes) -> Spec:
    blocks = list(spec.blocks)
    blocks[index] = replace(blocks[index], **changes)
    return spec.with_blocks(blocks)


def children_of(spec: Spec, block_id: str) -> list[str]:
    """Returns the ids of the blocks that take `block_id` as a parent, in block order."""
    return [block.id for block in spec.blocks if block_id in block.parents]


def output_block(spec: Spec, level: int) -> str | None:
    """Returns the id of the output block at `level`, or None."""
    return next((block.id for block in spec.blocks if block.is_output and block.level == level), None)


def set_level(spec: Spec, block_id: str, level: int) -> Spec:
    """Returns the spec with block `block_id` at feature level `level` (1..7)."""
    index = _block_index(spec, block_id)
    if not isinstance(level, int) or isinstance(level, bool) or not MIN_LEVEL <= level <= MAX_LEVEL:
        _fail(f"block '{block_id}': level must be an integer in [{MIN_LEVEL}, {MAX_LEVEL}], got {level!r}")
    block = spec.blocks[index]
    if block.is_output and level != block.level:
        other = output_block(spec, level)
        if other is not None:
            _fail(f"block '{block_id}' is the P{block.level} output; at level {level} it would be a second output "
                  f"beside '{other}' (and P{block.level} would have none)")
        _fail(f"block '{block_id}' is the P{block.level} output; moving it to level {level} leaves P{block.level} "
              f"without an output block (make another level-{block.level} block the output first)")
    return check_spec(_replace_block(spec, index, level=level))


def set_block_fn(spec: Spec, block_id: str, block_fn: str) -> Spec:
    """Returns the spec with block `block_id` of type `block_fn` (bottleneck, residual or mbconv)."""
    index = _block_index(spec, block_id)
    allowed = family_of(spec).block_fns
    if block_fn not in allowed:
        _fail(f"block '{block_id}': block type '{str(block_fn)[:32]}' is not used in family {spec.family} "
              f"(use {' or '.join(allowed)})")
    return check_spec(_replace_block(spec, index, block_fn=block_fn))


def set_parents(spec: Spec, block_id: str, parents) -> Spec:
    """Returns the spec with block `block_id` fed by the two blocks `parents` (ids of earlier blocks or stems)."""
    index = _block_index(spec, block_id)
    parents = tuple(parents)
    if len(parents) != 2:
        _fail(f"block '{block_id}': needs exactly two parents, got {len(parents)}")
    earlier = list(STEM_IDS) + [block.id for block in spec.blocks[:index]]
    for parent in parents:
        if parent == block_id:
            _fail(f"block '{block_id}': a block cannot be its own parent")
        if parent not in earlier:
            where = "comes after it" if parent in spec.block_ids else "does not exist"
            _fail(f"block '{block_id}': parent '{str(parent)[:32]}' {where}; a parent must be an earlier block")
    if parents[0] == parents[1]:
        _fail(f"block '{block_id}': both parents are '{parents[0]}'; a block needs two different parents")
    return check_spec(_replace_block(spec, index, parents=parents))


def set_output(spec: Spec, block_id: str, is_output: bool) -> Spec:
    """Returns the spec with `block_id` as the output of its level (True), taking the flag from the block that
    had it, or with its output flag cleared (False, which fails unless the level is outside the outputs)."""
    index = _block_index(spec, block_id)
    block = spec.blocks[index]
    if is_output == block.is_output:
        return spec
    if not is_output:
        if spec.min_level <= block.level <= spec.max_level:
            _fail(f"block '{block_id}' is the only P{block.level} output; make another level-{block.level} block "
                  "the output instead")
        return check_spec(_replace_block(spec, index, is_output=False))
    if not spec.min_level <= block.level <= spec.max_level:
        _fail(f"block '{block_id}' is at level {block.level}, outside the output levels "
              f"P{spec.min_level}-P{spec.max_level}")
    blocks = [replace(other, is_output=False) if other.is_output and other.level == block.level else other
              for other in spec.blocks]
    blocks[index] = replace(block, is_output=True)
    return check_spec(spec.with_blocks(blocks))


def set_min_level(spec: Spec, min_level: int, outputs: dict | None = None) -> Spec:
    """Returns the spec with its lowest output level `min_level` (2 for P2, up to max_level). Raising it keeps the
    blocks of the levels that leave the outputs, with their output flag cleared (built, no endpoint, as the
    reference does with a level-2 output and min_level 3). Lowering it needs an output block at every level that
    joins: one already flagged, or `outputs` {level: block id} naming a block at that level to flag. Raises
    SpecError (one line naming the value) otherwise; a ResNet-FPN spec gets its family's message (P3-P7 only)."""
    if not isinstance(min_level, int) or isinstance(min_level, bool) or not 2 <= min_level <= spec.max_level:
        _fail(f"min level must be an integer from 2 to {spec.max_level} (the max level), got {describe_value(min_level)}")
    if not family_of(spec).has_blocks:
        return check_spec(replace(spec, min_level=min_level))
    outputs = dict(outputs or {})
    blocks = list(spec.blocks)
    for level, block_id in sorted(outputs.items()):
        index = _block_index(spec, block_id)
        if blocks[index].level != level:
            _fail(f"block '{block_id}' is at level {blocks[index].level}, so it cannot be the P{level} output")
    for level in range(min_level, spec.max_level + 1):
        chosen = outputs.get(level) or output_block(spec, level)
        if chosen is None:
            candidates = [block.id for block in spec.blocks if block.level == level]
            _fail(f"min level {min_level}: no output block at level {level} (P{level}); "
                  + (f"choose one of the level-{level} blocks ({', '.join(candidates)}) as P{level}" if candidates
                     else f"there is no level-{level} block: insert one first"))
        blocks = [replace(block, is_output=block.id == chosen) if block.level == level else block for block in blocks]
    blocks = [replace(block, is_output=False) if block.is_output and block.level < min_level else block
              for block in blocks]
    return check_spec(replace(spec, min_level=min_level, blocks=tuple(blocks)))


def min_level_options(spec: Spec) -> list[tuple[int, str | None]]:
    """Returns the min_level edits an editor can offer: (min_level, None) for 2..max_level (keeping the outputs
    there are), then (2, block id) for each level-2 block that could be made P2; [] for a family without blocks."""
    if not family_of(spec).has_blocks:
        return []
    current = output_block(spec, 2) if spec.min_level <= 2 else None
    return ([(level, None) for level in range(2, spec.max_level + 1)]
            + [(2, block.id) for block in spec.blocks if block.level == 2 and block.id != current])


def min_level_change_note(old: Spec, new: Spec) -> str:
    """Returns one line saying what a min_level change did: the outputs now, and the blocks (ids) that gained or
    lost an endpoint; a block that lost it and reaches no output any more is said to cost params and 0 MACs."""
    from spinescope.spinenet.layout import live_nodes, resolve

    lost = [b.id for b in old.blocks if b.is_output and not new.block(b.id).is_output]
    gained = [b.id for b in new.blocks if b.is_output and not old.block(b.id).is_output]
    parts = [f"min level {old.min_level} -> {new.min_level}: outputs P{new.min_level}-P{new.max_level}"]
    if gained:
        parts.append(f"{', '.join(gained)} now feed{'s' if len(gained) == 1 else ''} an endpoint")
    if lost:
        live = live_nodes(resolve(new))
        dead = [block_id for block_id in lost if block_id not in live]
        parts.append(f"{', '.join(lost)} kept without an endpoint, as the reference does"
                     + (f" ({', '.join(dead)} reach{'es' if len(dead) == 1 else ''} no output: params counted, "
                        "0 MACs)" if dead else ""))
    return "; ".join(parts)


def move_block(spec: Spec, block_id: str, offset: int) -> Spec:
    """Returns the spec with `block_id` moved `offset` places (negative: earlier) in block order."""
    index = _block_index(spec, block_id)
    target = index + offset
    if offset == 0:
        return spec
    if not 0 <= target < len(spec.blocks):
        _fail(f"block '{block_id}' is already the {'first' if offset < 0 else 'last'} block")
    block = spec.blocks[index]
    if offset < 0:
        passed = spec.blocks[target:index]
        blocking = [other.id for other in passed if other.id in block.parents]
        if blocking:
            _fail(f"cannot move '{block_id}' before '{blocking[-1]}': '{blocking[-1]}' is its parent and must "
                  "come earlier")
    else:
        passed = spec.blocks[index + 1:target + 1]
        blocking = [other.id for other in passed if block_id in other.parents]
        if blocking:
            _fail(f"cannot move '{block_id}' after '{blocking[0]}': '{block_id}' is a parent of '{blocking[0]}' "
                  "and must come earlier")
    blocks = list(spec.blocks)
    blocks.pop(index)
    blocks.insert(target, block)
    return check_spec(spec.with_blocks(blocks))


def new_block_id(spec: Spec) -> str:
    """Returns an unused id of the form b<N>, N one more than the largest number in use (at least 2)."""
    numbers = [int(match.group(1)) for block_id in spec.block_ids if (match := _NUMBERED_ID.match(block_id))]
    return f"b{max(numbers + [len(spec.blocks) + 1]) + 1}"


def insert_block(spec: Spec, after_id: str, block_id: str | None = None, level: int | None = None,
                 block_fn: str | None = None, parents=None) -> Spec:
    """Returns the spec with a new non-output block right after `after_id` ('stem1' or 'stem0': first).

    Defaults: level and type of `after_id`; parents `after_id` and the block before it; a fresh b<N> id.
    """
    if not family_of(spec).has_blocks:
        _fail(f"{spec.name} is a {family_of(spec).title} spec: it has stages, not editable blocks")
    if len(spec.blocks) >= LIMITS["max_blocks"]:
        _fail(f"cannot insert: {spec.name} already has {len(spec.blocks)} blocks, the limit")
    if after_id in STEM_IDS:
        index, after = 0, None
    else:
        index = _block_index(spec, after_id) + 1
        after = spec.blocks[index - 1]
    earlier = list(STEM_IDS) + list(spec.block_ids[:index])
    if parents is None:
        parents = tuple(earlier[-2:])
    default_fn = after.block_fn if after else family_of(spec).block_fns[0]
    default_level = after.level if after else 2
    block = Block(id=block_id or new_block_id(spec), level=default_level if level is None else level,
                  block_fn=block_fn or default_fn, parents=tuple(parents), is_output=False)
    if block.id in spec.block_ids or block.id in STEM_IDS:
        _fail(f"cannot insert: id '{block.id}' is already used")
    blocks = list(spec.blocks)
    blocks.insert(index, block)
    return check_spec(spec.with_blocks(blocks))


def delete_block(spec: Spec, block_id: str, rewire: bool = False) -> Spec:
    """Returns the spec without `block_id`. Blocks that use it as a parent make this fail, unless `rewire`:
    then each of them takes one of the deleted block's parents instead (the first one it does not already have)."""
    index = _block_index(spec, block_id)
    block = spec.blocks[index]
    if block.is_output and spec.min_level <= block.level <= spec.max_level:
        _fail(f"cannot delete '{block_id}': it is the P{block.level} output; make another level-{block.level} "
              "block the output first")
    children = children_of(spec, block_id)
    if children and not rewire:
        _fail(f"cannot delete '{block_id}': {', '.join(repr(c) for c in children)} use it as a parent "
              "(rewire them first, or delete with rewiring)")
    blocks = []
    for other in spec.blocks:
        if other.id == block_id:
            continue
        if block_id in other.parents:
            kept = next(parent for parent in other.parents if parent != block_id)
            substitute = next(parent for parent in block.parents if parent != kept)
            other = replace(other, parents=tuple(substitute if p == block_id else p for p in other.parents))
        blocks.append(other)
    if not blocks:
        _fail(f"cannot delete '{block_id}': it is the last block")
    return check_spec(spec.with_blocks(blocks))


def _plain(value):
    """Returns a table cell as a plain Python value: numpy scalars unwrapped, NaN and empty strings as None."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


# The block table's column labels, as the app shows them; replace_blocks names fields by them.
TABLE_LABELS = {"id": "id", "level": "level", "block_fn": "type", "parent0": "parent 1", "parent1": "parent 2",
                "is_output": "output"}


def replace_blocks(spec: Spec, rows, labels: dict | None = None) -> Spec:
    """Returns the spec with its whole block list replaced by `rows` (from a table editor): each a mapping with
    id, level, block_fn, is_output and either `parents` (two ids) or `parent0`/`parent1`. A refusal names the row
    (1-based) and the column by its label in `labels` (default TABLE_LABELS: "parent 2", not parents[1])."""
    labels = {**TABLE_LABELS, **(labels or {})}
    if not family_of(spec).has_blocks:
        _fail(f"{spec.name} is a {family_of(spec).title} spec: it has stages, not editable blocks")
    blocks, ids = [], []
    for number, row in enumerate(rows):
        row = {key: _plain(value) for key, value in dict(row).items()}
        parents = row.get("parents")
        if parents is None:
            parents = [row.get("parent0"), row.get("parent1")]
        label = f"row {number + 1}" + (f" ({describe_value(row['id'])})" if isinstance(row.get("id"), str) else "")
        if row.get("is_output") is None:
            row["is_output"] = False
        for key in ("id", "level", "block_fn"):
            if row.get(key) is None:
                _fail(f"{label}: column \"{labels[key]}\" is empty")
        for index, parent in enumerate(parents):
            if parent is None:
                _fail(f"{label}: column \"{labels[f'parent{index}']}\" is empty (every block has two parents)")
        ids.append(row["id"])
        blocks.append({"id": row["id"], "level": row["level"], "block_fn": row["block_fn"],
                       "parents": list(parents), "is_output": row["is_output"]})
    data = spec_to_dict(spec)
    data["blocks"] = blocks
    try:
        return parse_spec(data)
    except SpecError as error:
        raise SpecError([_in_table_terms(problem, ids, labels) for problem in error.problems]) from None


def _in_table_terms(problem: str, ids: list, labels: dict) -> str:
    """Rewrites a validation message about blocks into the table's terms: rows numbered from 1, columns by label."""
    def row_of_id(match):
        block_id = match.group(1)
        rows = [index for index, value in enumerate(ids) if value == block_id]
        return f"row {rows[-1] + 1} ('{block_id}')" if rows else match.group(0)

    problem = re.sub(r"block '([A-Za-z0-9_-]{1,32})'", row_of_id, problem)
    problem = re.sub(r"block (\d+) in the list", r"row \1", problem)
    problem = re.sub(r"parents\[(\d)\]:?", lambda match: f"column \"{labels[f'parent{match.group(1)}']}\":",
                     problem)
    for name in ("block_fn", "is_output"):
        problem = re.sub(rf"\b{name}\b:?", f"column \"{labels[name]}\":", problem)
    problem = re.sub(r"(row \d+(?: \('[^']*'\))?): (id|level)\b", lambda match:
                     f"{match.group(1)}: column \"{labels[match.group(2)]}\"", problem)
    return problem


def set_stages(spec: Spec, stages) -> Spec:
    """Returns a ResNet-FPN spec with four new stage block counts (e.g. (3, 4, 6, 3) for ResNet-50)."""
    if family_of(spec).has_blocks:
        _fail(f"{spec.name} is a {spec.family} spec: it has blocks, not stages")
    return check_spec(replace(spec, stages=tuple(_plain(count) for count in stages)))


def set_scaling(spec: Spec, **changes) -> Spec:
    """Returns the spec with scaling fields changed (endpoints_num_filters, filter_size_scale, resample_alpha,
    block_repeats); a RetinaNet head as wide as the endpoints stays as wide, a narrower or wider one keeps its width."""
    if not family_of(spec).has_blocks:
        _fail(f"{spec.name} is a {family_of(spec).title} spec: it has no SpineNet scaling")
    changes = {key: _plain(value) for key, value in changes.items()}
    unknown = sorted(set(changes) - {"endpoints_num_filters", "filter_size_scale", "resample_alpha",
                                     "block_repeats"})
    if unknown:
        _fail(f"scaling: unknown field {unknown[0]!r}")
    scaling = replace(spec.scaling, **changes)
    follows = spec.head.width == spec.scaling.endpoints_num_filters
    head = replace(spec.head, width=scaling.endpoints_num_filters) if follows else spec.head
    return check_spec(replace(spec, scaling=scaling, head=head))


def rename(spec: Spec, name: str) -> Spec:
    """Returns the spec with a new name."""
    return check_spec(replace(spec, name=str(name).strip()))


def set_semantics(spec: Spec, semantics: str) -> Spec:
    """Returns the spec with `semantics` ("reference": the authors' TF1 code; "model_garden": TF2 Model Garden,
    docs/spinenet-facts.md section 14); raises SpecError (one line) for another value or a ResNet-FPN spec."""
    if semantics not in SEMANTICS:
        _fail(f"semantics must be one of {', '.join(SEMANTICS)}, got {describe_value(semantics)}")
    return check_spec(replace(spec, semantics=semantics))


def semantics_change_note(old: Spec, new: Spec) -> str:
    """Returns one line saying what a semantics change did to the model: params before and after, and the dead
    blocks Model Garden does not build (or the reference builds again)."""
    from spinescope.spinenet.describe import describe
    from spinescope.spinenet.layout import dead_blocks
    from spinescope.spinenet.operators import layer_params

    def params(spec: Spec) -> int:
        return sum(layer_params(layer.kind, layer.attrs) for layer in describe(spec).root.walk())

    dead = list(dead_blocks(describe(new).layout))
    line = f"semantics {old.semantics} -> {new.semantics}: {params(old):,} -> {params(new):,} params"
    if dead:
        line += (f"; dead block{'s' if len(dead) > 1 else ''} {', '.join(dead)} "
                 + ("not built" if new.semantics == "model_garden" else "built again (params counted, 0 MACs)"))
    return line


@dataclass(frozen=True)
class HistoryEntry:
    """One accepted spec and what produced it. `kind` is 'load' (a new starting spec) or 'edit'."""

    spec: Spec
    description: str
    kind: str = "edit"


@dataclass
class EditHistory:
    """The accepted specs in order, with a cursor for undo/redo. entries[cursor] is the current spec."""

    entries: list[HistoryEntry] = field(default_factory=list)
    cursor: int = -1

    @classmethod
    def starting_with(cls, spec: Spec, description: str = "start") -> "EditHistory":
        return cls([HistoryEntry(spec, description, "load")], 0)

    @property
    def current(self) -> Spec:
        return self.entries[self.cursor].spec

    @property
    def base(self) -> Spec:
        """The spec the current edits started from: the latest 'load' entry at or before the cursor."""
        for entry in reversed(self.entries[:self.cursor + 1]):
            if entry.kind == "load":
                return entry.spec
        return self.entries[0].spec

    @property
    def can_undo(self) -> bool:
        return self.cursor > 0

    @property
    def can_redo(self) -> bool:
        return self.cursor < len(self.entries) - 1

    def push(self, spec: Spec, description: str, kind: str = "edit") -> Spec:
        """Adds an accepted spec after the cursor (dropping any redo entries); returns it."""
        del self.entries[self.cursor + 1:]
        self.entries.append(HistoryEntry(spec, description, kind))
        self.cursor = len(self.entries) - 1
        return spec

    def drop_oldest(self, count: int) -> None:
        """Forgets the `count` oldest entries (none past the cursor), keeping the cursor on the same entry."""
        count = max(0, min(count, self.cursor))
        del self.entries[:count]
        self.cursor -= count

    def apply(self, edit, *args, description: str, **kwargs) -> Spec:
        """Runs `edit(current, *args, **kwargs)`; on success pushes and returns the new spec. A SpecError
        propagates and leaves the history unchanged."""
        return self.push(edit(self.current, *args, **kwargs), description)

    def undo(self) -> Spec:
        """Steps back one entry; returns the now current spec. Raises SpecError if there is nothing to undo."""
        if not self.can_undo:
            _fail("nothing to undo")
        self.cursor -= 1
        return self.current

    def redo(self) -> Spec:
        """Steps forward one entry; returns the now current spec. Raises SpecError if there is nothing to redo."""
        if not self.can_redo:
            _fail("nothing to redo")
        self.cursor += 1
        return self.current

    @property
    def undo_description(self) -> str | None:
        return self.entries[self.cursor].description if self.can_undo else None

    @property
    def redo_description(self) -> str | None:
        return self.entries[self.cursor + 1].description if self.can_redo else None


@dataclass(frozen=True)
class SpecDiff:
    """How `new` differs from `old`, block by block. Pairs are (old value, new value)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    moved: tuple[tuple[str, int, int], ...] = ()  # (id, old position, new position), 0-based among blocks
    rewired: tuple[tuple[str, tuple[str, str], tuple[str, str]], ...] = ()
    retyped: tuple[tuple[str, str, str], ...] = ()
    relevelled: tuple[tuple[str, int, int], ...] = ()
    output_changed: tuple[tuple[str, bool, bool], ...] = ()
    other: tuple[str, ...] = ()  # changes outside the block list (name, scaling, stages, ...)
    fields: tuple[tuple[str, str, str], ...] = ()  # the same as (field, old value, new value), readable

    @property
    def empty(self) -> bool:
        return not any((self.added, self.removed, self.moved, self.rewired, self.retyped, self.relevelled,
                        self.output_changed, self.other))

    def lines(self) -> list[str]:
        """Returns one human-readable line per change."""
        lines = [f"added {block_id}" for block_id in self.added]
        lines += [f"removed {block_id}" for block_id in self.removed]
        lines += [f"moved {block_id}: position {old + 1} -> {new + 1}" for block_id, old, new in self.moved]
        lines += [f"rewired {block_id}: parents {', '.join(old)} -> {', '.join(new)}"
                  for block_id, old, new in self.rewired]
        lines += [f"retyped {block_id}: {old} -> {new}" for block_id, old, new in self.retyped]
        lines += [f"relevelled {block_id}: L{old} -> L{new}" for block_id, old, new in self.relevelled]
        lines += [f"output flag of {block_id}: {'on' if old else 'off'} -> {'on' if new else 'off'}"
                  for block_id, old, new in self.output_changed]
        return lines + list(self.other)

    def rows(self) -> list[dict]:
        """Returns one row per change: what changed, before and after (all text; '' where there is none)."""
        rows = [{"change": f"block {block_id}", "before": "", "after": "added"} for block_id in self.added]
        rows += [{"change": f"block {block_id}", "before": "present", "after": "removed"} for block_id in self.removed]
        rows += [{"change": f"{block_id} position", "before": str(old + 1), "after": str(new + 1)}
                 for block_id, old, new in self.moved]
        rows += [{"change": f"{block_id} parents", "before": ", ".join(old), "after": ", ".join(new)}
                 for block_id, old, new in self.rewired]
        rows += [{"change": f"{block_id} type", "before": old, "after": new} for block_id, old, new in self.retyped]
        rows += [{"change": f"{block_id} level", "before": f"L{old}", "after": f"L{new}"}
                 for block_id, old, new in self.relevelled]
        rows += [{"change": f"{block_id} output", "before": "yes" if old else "no", "after": "yes" if new else "no"}
                 for block_id, old, new in self.output_changed]
        return rows + [{"change": field, "before": old, "after": new} for field, old, new in self.fields]


def _longest_common_subsequence(first: list[str], second: list[str]) -> set[str]:
    lengths = [[0] * (len(second) + 1) for _ in range(len(first) + 1)]
    for i, a in enumerate(first):
        for j, b in enumerate(second):
            lengths[i + 1][j + 1] = lengths[i][j] + 1 if a == b else max(lengths[i][j + 1], lengths[i + 1][j])
    kept, i, j = set(), len(first), len(second)
    while i and j:
        if first[i - 1] == second[j - 1]:
            kept.add(first[i - 1])
            i, j = i - 1, j - 1
        elif lengths[i - 1][j] >= lengths[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return kept


def diff_specs(old: Spec, new: Spec) -> SpecDiff:
    """Returns the block-level differences from `old` to `new`. Blocks are matched by id; a block counts as moved
    when it is not in the longest run of common blocks that kept their relative order."""
    old_blocks = {block.id: (index, block) for index, block in enumerate(old.blocks)}
    new_blocks = {block.id: (index, block) for index, block in enumerate(new.blocks)}
    common_old = [block.id for block in old.blocks if block.id in new_blocks]
    common_new = [block.id for block in new.blocks if block.id in old_blocks]
    in_order = _longest_common_subsequence(common_old, common_new)
    moved, rewired, retyped, relevelled, output_changed = [], [], [], [], []
    for block_id in common_new:
        (old_index, before), (new_index, after) = old_blocks[block_id], new_blocks[block_id]
        if block_id not in in_order:
            moved.append((block_id, old_index, new_index))
        if before.parents != after.parents:
            rewired.append((block_id, before.parents, after.parents))
        if before.block_fn != after.block_fn:
            retyped.append((block_id, before.block_fn, after.block_fn))
        if before.level != after.level:
            relevelled.append((block_id, before.level, after.level))
        if before.is_output != after.is_output:
            output_changed.append((block_id, before.is_output, after.is_output))
    old_data, new_data = spec_to_dict(old), spec_to_dict(new)
    old_data.pop("blocks", None)
    new_data.pop("blocks", None)
    for data in (old_data, new_data):  # a file leaves out the default semantics; a diff names it
        data.setdefault("semantics", "reference")
    fields = tuple((field, _shown(before), _shown(after)) for field, before, after in _field_changes(old_data, new_data))
    return SpecDiff(
        added=tuple(block.id for block in new.blocks if block.id not in old_blocks),
        removed=tuple(block.id for block in old.blocks if block.id not in new_blocks),
        moved=tuple(moved), rewired=tuple(rewired), retyped=tuple(retyped), relevelled=tuple(relevelled),
        output_changed=tuple(output_changed), other=tuple(f"{field}: {old} -> {new}" for field, old, new in fields),
        fields=fields,
    )


_FIELD_NAMES = {"endpoints_num_filters": "endpoint filters", "filter_size_scale": "filter size scale",
                "resample_alpha": "resample alpha", "block_repeats": "block repeats", "num_convs": "convs",
                "num_classes": "classes", "num_anchors": "anchors", "input_size": "input size",
                "min_level": "min level", "max_level": "max level"}


def _field_changes(old: dict, new: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """Returns (readable field name, old value, new value) for every field that differs, nested mappings
    (scaling, head) one row per field; numbers equal in value (1.0 and 1) are not a change."""
    changes = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        name = f"{prefix}{_FIELD_NAMES.get(key, key.replace('_', ' '))}"
        if isinstance(before, dict) and isinstance(after, dict):
            changes += _field_changes(before, after, f"{name} · ")
        elif not _same(before, after):
            changes.append((name, before, after))
    return changes


def _same(first, second) -> bool:
    numbers = (int, float)
    if isinstance(first, numbers) and isinstance(second, numbers) and not isinstance(first, bool) \
            and not isinstance(second, bool):
        return math.isclose(first, second, rel_tol=0, abs_tol=1e-12)
    if isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)):
        return len(first) == len(second) and all(_same(a, b) for a, b in zip(first, second))
    return first == second


def _shown(value) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "none"}[value]
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_shown(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{_FIELD_NAMES.get(k, k)} {_shown(v)}" for k, v in value.items())
    return str(value)
