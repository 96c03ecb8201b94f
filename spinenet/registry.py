"""Families and heads, each registered once by its own module.

A `Family` (SpineNet, Mobile SpineNet, ResNet-FPN) knows how its spec fields map to data, how a spec resolves to a
graph (`Layout`) at an input size, and how its backbone is described layer by layer. A `HeadType` (RetinaNet,
classification) knows how it is described on top of the backbone's features. Everything else (builders, counters,
the CLI's choices, the app's widgets) looks them up here instead of branching on names.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, ClassVar

from spinescope.spinenet.geometry import Shape
from spinescope.spinenet.input_size import InputSize
from spinescope.spinenet.structure import Describer

NO_HEAD = "none"


class Family(ABC):
    """One backbone family: a subclass sets the class attributes and defines the methods below; one instance of it
    is registered (`register_family`).

    name, title: its spec name ("spinenet") and its name for people ("SpineNet").
    block_fns: block types its editable blocks may use (empty: no editable blocks, e.g. ResNet-FPN's stages).
    stem_ids: ids of its stem nodes that blocks may take as parents.
    fields: the keys of its own spec fields (besides name, family, input_size, levels, activation, head).
    default_input_size: the input side in pixels of a spec that gives none.
    A `spec` is a `spinenet.spec.Spec` and a `layout` a `spinenet.layout.Layout` (both modules import this one, so
    they are not named in the hints).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    block_fns: ClassVar[tuple[str, ...]] = ()
    stem_ids: ClassVar[tuple[str, ...]]
    fields: ClassVar[frozenset[str]]
    default_input_size: ClassVar[int] = 640

    @property
    def has_blocks(self) -> bool:
        """True when the family's architecture is an editable list of blocks."""
        return bool(self.block_fns)

    @abstractmethod
    def block_width(self, spec, level: int) -> int:
        """Returns the 3x3 width C of a block at `level`, channels."""

    @abstractmethod
    def to_dict(self, spec) -> dict:
        """Returns the family's own fields of `spec` as plain data."""

    @abstractmethod
    def from_dict(self, data: dict, common: dict):
        """Returns the Spec of checked data `data`; `common` holds the fields every family has."""

    @abstractmethod
    def check(self, problems: list[str], data: dict, min_level, max_level, levels_ok: bool) -> int | None:
        """Appends one line per problem of the family's own fields in `data` to `problems`; returns the endpoint
        width, channels (None when it is invalid). `levels_ok`: min_level and max_level are valid ints."""

    @abstractmethod
    def resolve(self, spec, input_size: InputSize):
        """Returns the graph of a valid spec at `input_size` (a side or (height, width), pixels)."""

    @abstractmethod
    def describe(self, d: Describer, layout) -> dict[str, Shape]:
        """Adds "backbone" to `d`; returns the outputs' shapes {"P3": (channels, height, width), ...}."""


@dataclass(frozen=True)
class HeadType:
    """One head. describe(d, spec, features, options) adds "head" to `d`; `options` are the head's keyword
    options with their defaults (e.g. num_classes, pooling) and the values each may take (`choices`)."""

    name: str
    title: str
    describe: Callable
    options: dict = field(default_factory=dict)
    choices: dict = field(default_factory=dict)


_FAMILIES: dict[str, Family] = {}
_HEADS: dict[str, HeadType] = {}


def register_family(family: Family) -> Family:
    """Registers one instance of a Family subclass under its name; returns it. Raises TypeError for anything else
    and ValueError for a name registered before."""
    if not isinstance(family, Family):
        raise TypeError(f"a family is an instance of a Family subclass, got {type(family).__name__}")
    if family.name in _FAMILIES:
        raise ValueError(f"family {family.name!r} registered twice")
    _FAMILIES[family.name] = family
    return family


def register_head(head: HeadType) -> HeadType:
    if head.name in _HEADS or head.name == NO_HEAD:
        raise ValueError(f"head {head.name!r} registered twice")
    _HEADS[head.name] = head
    return head


def families() -> dict[str, Family]:
    """Returns every registered family by name, in registration order."""
    return _FAMILIES


def family(name: str) -> Family:
    """Returns the family `name`; raises KeyError naming the known ones."""
    known = families()
    if name not in known:
        raise KeyError(f"unknown family {name!r}; use one of {', '.join(known)}")
    return known[name]


def family_of(spec) -> Family:
    """Returns the family of `spec`."""
    return family(spec.family)


def heads() -> dict[str, HeadType]:
    """Returns every registered head by name (not "none"), in registration order."""
    return _HEADS


def head_names(with_none: bool = True) -> tuple[str, ...]:
    """Returns the names a `head` argument may take: "none" (backbone only) first, then every registered head."""
    return ((NO_HEAD,) if with_none else ()) + tuple(heads())


def head_type(name: str) -> HeadType | None:
    """Returns the head `name` (None for "none"); raises ValueError naming the known heads."""
    if name == NO_HEAD:
        return None
    known = heads()
    if name not in known:
        raise ValueError(f"unknown head {name!r}; use one of {', '.join(head_names())}")
    return known[name]


def head_options(name: str, **given) -> dict:
    """Returns the full options of head `name` (defaults overridden by the `given` ones that it takes), checked
    against their choices; raises ValueError for a value it does not allow."""
    head = head_type(name)
    if head is None:
        return {}
    options = {key: given.get(key, default) if given.get(key) is not None else default
               for key, default in head.options.items()}
    for key, allowed in head.choices.items():
        if options[key] not in allowed:
            raise ValueError(f"unknown {key} {options[key]!r}; use one of {', '.join(allowed)}")
    return options
