"""spec -> the whole network described layer by layer at one input size (`Structure`), without torch.

This is the one source of structure: `spinenet.modules` instantiates it, `analysis.counting.fast` counts it, the
receptive fields and the block-type what-if read it. Results are cached and must be treated as read-only.
"""
from __future__ import annotations

from dataclasses import dataclass

from spinescope.spinenet.blocks import describe_block_group as add_group
from spinescope.spinenet.cache import LruCache
from spinescope.spinenet.input_size import InputSize, hw, normalize
from spinescope.spinenet.layout import Layout, resolve
from spinescope.spinenet.registry import NO_HEAD, family_of, head_options, head_type
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.structure import Describer, Layer, Shape, check_tree

CACHE_SIZE = 256


@dataclass(frozen=True, eq=False)
class Structure:
    """The model `root` ("" with children "backbone" and, with a head, "head") of `spec` at `input_size` (a side,
    or (height, width), in pixels), its graph-level `layout`, and the backbone's output `features` ("P3" ->
    (channels, height, width))."""

    spec: Spec
    input_size: InputSize
    head: str
    options: tuple
    layout: Layout
    root: Layer
    features: dict[str, Shape]

    def layer(self, name: str) -> Layer:
        """Returns the layer called `name` ("" is the model); raises KeyError if there is none."""
        return self.root.find(name)


def _describe(spec: Spec, input_size: InputSize, head: str, options: dict) -> Structure:
    layout = resolve(spec, input_size)
    d = Describer("model", semantics=spec.semantics)
    features = family_of(spec).describe(d, layout)
    head_kind = head_type(head)
    if head_kind is not None:
        head_kind.describe(d, spec, features, **options)
    else:
        d.root.attrs["head"] = None  # `model.head` is None for a backbone alone
    check_tree(d.root)
    return Structure(spec, input_size, head, tuple(sorted(options.items())), layout, d.root, features)


_structures: LruCache[Structure] = LruCache(CACHE_SIZE)


def describe(spec: Spec, input_size: InputSize | None = None, head: str = NO_HEAD, **options) -> Structure:
    """Returns the Structure of `spec` with `head` ("none" or a registered head; `options` such as num_classes or
    pooling go to the head and are ignored where it takes none) at `input_size` (default: the spec's; a side or
    (height, width), pixels). Raises ValueError for an unknown head or option value. Cached (read-only)."""
    input_size = normalize(input_size or spec.input_size)
    options = head_options(head, **options)
    key = (spec, input_size, head, tuple(sorted(options.items())))
    return _structures.get(key, lambda: _describe(spec, input_size, head, options))


def clear_cache() -> None:
    """Empties the caches of `describe` and of `layout.resolve` (for benchmarks that time the uncached path)."""
    from spinescope.spinenet import layout

    _structures.clear()
    layout.LAYOUTS.clear()


def describe_block_group(block_fn: str, in_channels: int, width: int, side: InputSize, repeats: int = 1,
                         stride: int = 1, activation: str = "relu") -> Layer:
    """Returns a standalone block group (Sequential of `repeats` blocks of type `block_fn`) described for a
    1 x in_channels x side x side input (or height x width when `side` is a pair); its children are named "0",
    "1", ... as in a model."""
    d = Describer("sequential")
    add_group(d, "group", block_fn, in_channels, width, repeats, stride, activation, (in_channels, *hw(side)))
    group = d.root.children[0]
    for layer in group.walk():  # names relative to the group, as in a model of its own
        layer.name = layer.name.partition(".")[2]
    return group
