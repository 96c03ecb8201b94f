"""The built-in architectures: every YAML data file in `assets/specs/`, named by its file name."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from spinescope.spinenet.spec import Spec

SPEC_DIR = Path(__file__).resolve().parent.parent / "assets" / "specs"


@lru_cache(maxsize=1)
def builtin_names() -> tuple[str, ...]:
    """Returns the names of the built-ins (the files in `assets/specs/` without `.yaml`), by family in registration
    order, then smallest first (trainable params of the backbone)."""
    from spinescope.spinenet.registry import families

    order = list(families())
    specs = {path.stem: load_builtin(path.stem) for path in SPEC_DIR.glob("*.yaml")}
    return tuple(sorted(specs, key=lambda name: (order.index(specs[name].family), _backbone_params(specs[name]),
                                                 name)))


def is_builtin(name: str) -> bool:
    """Returns whether `name` (any case) is a built-in, without loading or sorting them."""
    key = name.lower()
    return key.replace("-", "").isalnum() and key.isascii() and (SPEC_DIR / f"{key}.yaml").is_file()


def _backbone_params(spec: Spec) -> int:
    from spinescope.analysis.counting.fast import count_model

    return count_model(spec).params["backbone"]


def __getattr__(name: str):
    if name == "BUILTIN_NAMES":  # read from assets/specs/ on first use
        return builtin_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=None)
def load_builtin(name: str) -> Spec:
    """Returns the built-in Spec called `name` (see `builtin_names()`); raises KeyError for an unknown name."""
    from spinescope.spinenet.formats import load_spec_file

    key = name.lower()
    path = SPEC_DIR / f"{key}.yaml"
    if not key.replace("-", "").isalnum() or not path.is_file():
        known = sorted(path.stem for path in SPEC_DIR.glob("*.yaml"))
        raise KeyError(f"unknown built-in {name!r}; choose one of: {', '.join(known)}")
    return load_spec_file(path)
