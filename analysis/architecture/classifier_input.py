"""The classification head's input at an input size: the pooled feature map (channels, height, width, pixels of
that map) and the classifier's input length (channels x sum(n^2) bins), read from the structure the model is built
from. The map grows with the input size; with SPP the length does not (SPPNet's point), which `summary` says in
one line for the app and the CLI."""
from __future__ import annotations

from dataclasses import dataclass

from spinescope.spinenet.input_size import InputSize, hw, size_text, size_to_json
from spinescope.spinenet.spec import Spec

# The second input size shown beside the current one: ImageNet's 224, or the paper's 640 when the current is 224.
OTHER_SIZES = (224, 640)
_TITLES = {"gap": "GAP", "spp": "SPP", "spp_avg": "SPP (average bins)"}


@dataclass(frozen=True)
class ClassifierInput:
    """pooling: gap, spp or spp_avg; levels: the pyramid's n per level ((1,) for gap); bins: sum(n^2); input_size:
    a side or (height, width), pixels; pooled_map: (channels, height, width) of the map that is pooled; length: the classifier's input
    length, channels x bins; bin_edges: one line per pyramid level saying which bin edges are used."""

    pooling: str
    levels: tuple[int, ...]
    bins: int
    input_size: InputSize
    pooled_map: tuple[int, int, int]
    length: int
    bin_edges: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"pooling": self.pooling, "levels": list(self.levels), "bins": self.bins,
                "input_size": size_to_json(self.input_size), "pooled_map": list(self.pooled_map), "length": self.length,
                "bin_edges": list(self.bin_edges)}


def classifier_input(spec: Spec, input_size: InputSize, pooling: str = "gap") -> ClassifierInput:
    """Returns the classification head's pooled map and input length for `spec` at `input_size` (a side or
    (height, width), pixels) with
    `pooling` ('gap', 'spp', 'spp:6,3,2,1', 'spp_avg', ...). Raises ValueError (one line) for a bad pooling."""
    from spinescope.spinenet.describe import describe
    from spinescope.spinenet.heads.classification import classifier_inputs, parse_pooling, sppnet_window

    kind, levels = parse_pooling(pooling)
    structure = describe(spec, input_size, "classification", pooling=pooling)
    pooled = tuple(next(iter(structure.features.values())))
    edges = []
    for n in levels if kind != "gap" else ():
        axes = [(name, side, sppnet_window(side, n)) for name, side in (("height", pooled[1]), ("width", pooled[2]))]
        if pooled[1] == pooled[2]:
            axes = [("", pooled[1], axes[0][2])]
        for name, side, window in axes:
            where = f"{n}x{n}" + (f" ({name})" if name else "")
            if window:
                edges.append(f"{where}: SPPNet window {window[0]}, stride {window[1]}")
            else:
                why = f"the {side} px map is smaller than {n}" if side < n else f"{side} mod {n} = {side % n}"
                edges.append(f"{where}: PyTorch's adaptive bins ({why}: SPPNet's windows would not tile it into "
                             f"{n} bins)")
    return ClassifierInput(kind, tuple(levels), sum(n * n for n in levels), structure.input_size, pooled,
                           classifier_inputs(pooled[0], pooling), tuple(edges))


def other_size(input_size: InputSize) -> int:
    """Returns the input size (pixels) shown beside `input_size`: 224, or 640 when `input_size` is 224."""
    return OTHER_SIZES[1] if hw(input_size) == hw(OTHER_SIZES[0]) else OTHER_SIZES[0]


def summary(first: ClassifierInput, second: ClassifierInput) -> str:
    """Returns one line such as 'SPP {4,2,1}: 256 x 21 = 5,376 inputs at 224 px (28x28 map) and at 640 px (80x80
    map)', or, should the lengths differ, both lengths."""
    title = _TITLES[first.pooling] + (" {" + ",".join(str(n) for n in first.levels) + "}" if first.pooling != "gap"
                                      else "")
    channels = first.pooled_map[0]

    def where(item: ClassifierInput) -> str:
        return f"at {size_text(item.input_size)} ({item.pooled_map[2]}x{item.pooled_map[1]} map)"

    if first.length == second.length:
        return (f"{title}: {channels} x {first.bins} = {first.length:,} inputs {where(first)} and {where(second)}: "
                "the map changes with the input size, the classifier's input length does not")
    return f"{title}: {first.length:,} inputs {where(first)}, {second.length:,} {where(second)}"
