"""Three-way merge of specs, for an edit made on a page drawn before another tab changed the same workspace.

`base` is the spec the stale page showed, `mine` the edit made on it, `theirs` the workspace's spec now. Fields
changed on one side only are taken from that side; a field both changed differently, or a block list whose ids or
order changed on either side while the other side changed it too, is a conflict and nothing is merged.
"""
from __future__ import annotations

from spinescope.spinenet.spec import Spec, spec_to_dict
from spinescope.spinenet.validate import SpecError, parse_spec


class MergeConflict(Exception):
    """The two changes touch the same field; the message names it (plain text, one line)."""


def merge_specs(base: Spec, mine: Spec, theirs: Spec) -> Spec:
    """Returns `theirs` with the changes from `base` to `mine` applied on top; raises MergeConflict naming the field
    both changed, or the reason the merged spec is not valid."""
    merged = _merge(spec_to_dict(base), spec_to_dict(mine), spec_to_dict(theirs), "")
    try:
        return parse_spec(merged)
    except SpecError as error:
        raise MergeConflict(f"together the two changes are not a valid spec ({str(error).splitlines()[0]})") from None


def _merge(base, mine, theirs, where: str):
    if mine == base or mine == theirs:
        return theirs
    if theirs == base:
        return mine
    if isinstance(base, dict) and isinstance(mine, dict) and isinstance(theirs, dict) \
            and base.keys() == mine.keys() == theirs.keys():
        return {key: _merge(base[key], mine[key], theirs[key], _field(where, key)) for key in base}
    if all(isinstance(side, list) and all(isinstance(item, dict) and "id" in item for item in side)
           for side in (base, mine, theirs)):
        ids = [item["id"] for item in base]
        if ids == [item["id"] for item in mine] == [item["id"] for item in theirs]:
            return [_merge(b, m, t, item_id) for item_id, b, m, t in zip(ids, base, mine, theirs)]
        raise MergeConflict("the block list (blocks added, removed or reordered)")
    raise MergeConflict(where or "the spec")


def _field(where: str, key: str) -> str:
    return f"{where}'s {key}" if where else key
