"""The built-in architectures: every YAML data file in `assets/specs/`, named by its file name."""
from __future__ import annotations

from functools import lru_cache

from spinescope.spinenet.formats import SPEC_DIR, load_spec_file
from spinescope.spinenet.spec import Spec

# By family in registration order, then smallest first (trainable params of the backbone), as
# tests/spinenet/test_registry.py checks by counting them.
ORDER = ("spinenet-49s", "spinenet-49", "spinenet-96", "spinenet-143", "spinenet-190", "spinenet-mobile-49xs",
         "spinenet-mobile-49s", "spinenet-mobile-49", "resnet50-fpn", "resnet101-fpn", "resnet152-fpn")


@lru_cache(maxsize=1)
def builtin_names() -> tuple[str, ...]:
    """Returns the names of the built-ins (the files in `assets/specs/` without `.yaml`): those in ORDER in its
    order, then any other file's by name. Reads no spec."""
    names = {path.stem for path in SPEC_DIR.glob("*.yaml")}
    return tuple(name for name in ORDER if name in names) + tuple(sorted(names - set(ORDER)))


def is_builtin(name: str) -> bool:
    """Returns whether `name` (any case) is a built-in, without loading or sorting them."""
    key = name.lower()
    return key.replace("-", "").isalnum() and key.isascii() and (SPEC_DIR / f"{key}.yaml").is_file()


def __getattr__(name: str):
    if name == "BUILTIN_NAMES":  # read from assets/specs/ on first use
        return builtin_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=None)
def load_builtin(name: str) -> Spec:
    """Returns the built-in Spec called `name` (see `builtin_names()`); raises KeyError for an unknown name."""
    key = name.lower()
    path = SPEC_DIR / f"{key}.yaml"
    if not key.replace("-", "").isalnum() or not path.is_file():
        known = sorted(path.stem for path in SPEC_DIR.glob("*.yaml"))
        raise KeyError(f"unknown built-in {name!r}; choose one of: {', '.join(known)}")
    return load_spec_file(path)
