"""What the app calls a spec. Edits keep a spec's name, so an edited SpineNet-49 is still named "SpineNet-49" in its
data; wherever the app names a spec (tables, plot labels, titles, file names) it shows `display_name`, which marks
such a spec as edited and adds a short content hash, so that it is never taken for the original."""
from __future__ import annotations

from functools import lru_cache

from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.spec import Spec, spec_hash

SHORT_HASH_DIGITS = 8  # hex digits of a spec's content hash wherever the app shows it (CSV and JSON keep all)


@lru_cache(maxsize=1)
def _builtin_hashes_by_name() -> dict[str, str]:
    return {load_builtin(name).name: spec_hash(load_builtin(name)) for name in BUILTIN_NAMES}


def short_hash(spec: Spec) -> str:
    """Returns the first SHORT_HASH_DIGITS hex digits of the spec's content hash (`spec_hash`, name excluded)."""
    return spec_hash(spec)[:SHORT_HASH_DIGITS]


def is_edited(spec: Spec, base: Spec | None = None) -> bool:
    """Whether `spec` carries a name that belongs to another architecture: that of `base` (the spec its edits
    started from) or of a built-in, with a different content hash."""
    if base is not None and base.name == spec.name:
        return spec_hash(base) != spec_hash(spec)
    original = _builtin_hashes_by_name().get(spec.name)
    return original is not None and original != spec_hash(spec)


def display_name(spec: Spec, base: Spec | None = None) -> str:
    """Returns the name the app shows for `spec` (plain text; escape it for Markdown or HTML): its own name, or,
    when that name belongs to another architecture (see `is_edited`), 'NAME, edited · HASH' with the short content
    hash ('SpineNet-49, edited · 3fa2c1d0'). Renaming the spec (Edit, "Name") makes its new name the one shown."""
    if not is_edited(spec, base):
        return spec.name
    return f"{spec.name}, edited · {short_hash(spec)}"
