"""The built-in architectures, stored as YAML data files in `assets/specs/`."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from spinenet.spec import Spec

SPEC_DIR = Path(__file__).resolve().parent.parent / "assets" / "specs"
BUILTIN_NAMES = (
    "spinenet-49s", "spinenet-49", "spinenet-96", "spinenet-143", "spinenet-190",
    "spinenet-mobile-49", "spinenet-mobile-49s", "spinenet-mobile-49xs",
    "resnet50-fpn", "resnet101-fpn", "resnet152-fpn",
)


@lru_cache(maxsize=None)
def load_builtin(name: str) -> Spec:
    """Returns the built-in Spec called `name` (see BUILTIN_NAMES); raises KeyError for an unknown name."""
    from spinenet.formats import load_spec_file

    key = name.lower()
    if key not in BUILTIN_NAMES:
        raise KeyError(f"unknown built-in {name!r}; choose one of: {', '.join(BUILTIN_NAMES)}")
    return load_spec_file(SPEC_DIR / f"{key}.yaml")
